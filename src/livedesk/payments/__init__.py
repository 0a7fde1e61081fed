"""Card payment inside the call: payment requests, providers (Stripe, sandbox), webhooks,
refunds."""
