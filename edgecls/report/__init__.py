"""Every report edgecls writes: the deploy report's sections, the bench report, the robustness report, their
HTML/Markdown/JSON rendering and number formatting."""
