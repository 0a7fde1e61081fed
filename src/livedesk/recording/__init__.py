"""Call recording: consent, the server-side recorder (no re-encoding), storage, playback,
retention."""
