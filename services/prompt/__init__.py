"""The prompt service: versioned templates with aliases, rendered in a sandbox and assembled
with retrieved context under a token budget."""
