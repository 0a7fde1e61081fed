"""livedesk: self-hosted online customer service by video."""

__version__ = "0.1.0"
