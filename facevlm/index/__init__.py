"""Face galleries: a durable store (SQLite + image files + a vector backend) and the search executor.

- `store.Gallery`: one gallery directory; crash-safe add/erase; rebuilds its index from SQLite.
- `backends`: FAISS (embedded: exact, IVF or HNSW) and Milvus (Lite file or server) behind one interface.
- `ingest.Ingestor`: decode -> detect -> align -> embed (FaceCLIP) -> pseudo-label -> store; resumable.
- `search.Searcher`: text->face, face->face, composed (PDV) queries with filters; runs `face_search` calls.
- `cli`: `facevlm index add/search/rm/stats`; `bench`/`loadtest`: `facevlm bench search/load`.
"""
