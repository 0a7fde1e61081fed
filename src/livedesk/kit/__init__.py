"""Small shared parts every capability uses: database scope, errors, HTTP helpers, clock."""
