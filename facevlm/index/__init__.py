"""Face galleries: a durable store (SQLite + image files + a vector backend) and the search executor.

- `names`: the one gallery-name rule, and where a name lives on disk (names only; paths for the CLI).
- `store.Gallery`: one gallery directory; crash-safe add/erase; rebuilds its index from SQLite;
  `delete_gallery` erases a whole one.
- `backends`: FAISS (embedded: exact, IVF or HNSW) and Milvus (Lite file or server) behind one interface.
- `ingest.Ingestor`: decode -> detect -> align -> embed (FaceCLIP, identity) -> pseudo-label -> store; resumable.
- `identity_space`: each face's identity descriptor (facevlm.vision.identity) in SQLite + a second backend.
- `search.Searcher`: text->face, face->face (look_alike: FaceCLIP; same_person: identity), composed (PDV)
  queries with filters; runs `face_search` calls.
- `recognize`: verification and "who is this?" among a gallery's labelled faces; `people`: cluster runs
  (over `cluster.cluster_vectors`) and naming a cluster; `reembed`: the resumable identity migration.
- `cli` + `identity_cli`: `facevlm index add/search/rm/drop/stats`, `reembed/verify/identify/cluster/
  name-cluster`; `bench`/`loadtest`: `facevlm bench search/load`.
"""
