"""Reading labelled data: datasets (Fashion-MNIST, arrays), image folders and their scans, multi-label manifests,
splits, and the bundled sample photos. Train, compress, bench, deploy and robustness all read data through here;
every image file goes through the runtime's one reader (edgecls.runtime.decode)."""
