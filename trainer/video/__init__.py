"""SAM2 video fine-tuning: sam2's SAM2Train memory (memory attention, memory encoder, object pointers) over clips."""
