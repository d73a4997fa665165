"""ComfyUI glue of the pack: what must know ComfyUI's conventions (the family table, its wrappers and
attention override, LoRA loading, the probe's hooks, the schedule preview's route). The math is in
taca_core; the node definitions, which only declare inputs and call into here, are in nodes/."""
