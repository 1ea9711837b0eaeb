"""Model folders: what a Hugging Face causal-LM folder must hold, and the demo model the project
builds itself (tokenizer and weights trained on text kept in the repository)."""
