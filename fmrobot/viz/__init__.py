"""Looking at episodes in other tools: Rerun recordings (rerun_recording.py)."""
