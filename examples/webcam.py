"""Classify a camera (or any video) live, with the label and FPS drawn on each frame.

    python examples/webcam.py model.onnx                       # webcam 0, window
    python examples/webcam.py model.xml --source clip.mp4 --output annotated.avi --no-window
"""

import argparse
import time

import cv2

import edgecls

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--source", default="0", help="camera index, video file or rtsp:// URL")
ap.add_argument("--output", help="write the annotated video here")
ap.add_argument("--no-window", action="store_true")
ap.add_argument("--process-all", action="store_true", help="process every frame instead of dropping stale ones")
ap.add_argument("--max-frames", type=int)
a = ap.parse_args()

source = int(a.source) if a.source.isdigit() else a.source
pred = edgecls.Predictor(a.model, threads=2)
writer, fps, last = None, 0.0, time.monotonic()
for n, r in enumerate(pred.stream(source, drop_frames=not a.process_all, smoothing=0.5, keep_frames=True)):
    now = time.monotonic()
    fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if n else 0.0
    last = now
    frame = r.frame
    text = f"{r.prediction.label} {r.prediction.score:.2f} | {fps:4.1f} FPS | {r.latency_ms:5.1f} ms | dropped {r.dropped}"
    cv2.putText(frame, text, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 5, cv2.LINE_AA)
    cv2.putText(frame, text, (12, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
    if a.output:
        if writer is None:
            writer = cv2.VideoWriter(a.output, cv2.VideoWriter_fourcc(*"MJPG"), 30, (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    if not a.no_window:
        cv2.imshow("edgecls", frame)
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            break
    print(f"frame {r.frame_index}: {text}")
    if a.max_frames and n + 1 >= a.max_frames:
        break
if writer is not None:
    writer.release()
