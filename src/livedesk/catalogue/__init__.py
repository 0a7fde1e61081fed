"""The product catalogue: products the advisor can put in a payment request."""
