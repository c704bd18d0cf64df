"""Face galleries: a durable store (SQLite + image files + a vector backend) and the search executor.

- `names`: the one gallery-name rule, and where a name lives on disk (names only; paths for the CLI).
- `store.Gallery`: one gallery directory; crash-safe add/erase; rebuilds its index from SQLite;
  `delete_gallery` erases a whole one.
- `backends`: FAISS (embedded: exact, IVF or HNSW) and Milvus (Lite file or server) behind one interface.
- `ingest.Ingestor`: decode -> detect -> align -> embed (FaceCLIP) -> pseudo-label -> store; resumable.
- `search.Searcher`: text->face, face->face, composed (PDV) queries with filters; runs `face_search` calls.
- `cli`: `facevlm index add/search/rm/drop/stats`; `bench`/`loadtest`: `facevlm bench search/load`.
"""
