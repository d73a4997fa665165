"""What the tests, bench/ and tools/ share: import it as `support` with tests/ on sys.path
(tests/conftest.py puts it there; scripts: `sys.path.insert(0, str(ROOT / "tests"))`).

pack: the pack (and peer packs) imported as ComfyUI imports them. comfy_env: a real ComfyUI on the
CPU, or skip. tiny_models / tiny_families: tiny models built with ComfyUI's own classes, conds,
sampling. lora_files: LoRA files in the key formats people have. reference: the one independent dense
TACA. taca: the pack's nodes as the tests call them. comfy_server: a real ComfyUI server with the pack.
"""
