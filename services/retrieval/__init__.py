"""The retrieval service: chunk, embed, index in Milvus, search."""
