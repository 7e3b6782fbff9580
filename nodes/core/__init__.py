"""Plain logic under the Quality Gate nodes. Imports torch and the standard library, never ComfyUI."""
