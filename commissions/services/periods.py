"""Period close and statements (SPEC §5: periods)."""
