"""/v1/galleries/{name}/clusters…: group a gallery's unlabelled faces by person, list the groups with
representative thumbnails, and name a group (sets `identity` on all its faces; facevlm.index.people).

A run is stored in the gallery, and clusters keep their ids across runs, so a client can show the groups,
let the user pick one and name it by id later. Clustering is bounded per request
(`identity.max_cluster_faces`); `facevlm index cluster` has no bound."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request

from facevlm.index.people import cluster_gallery, get_cluster, latest_run, name_cluster
from facevlm.index.recognize import resolve_threshold
from facevlm.serve import api_identity as m
from facevlm.serve.body import json_only
from facevlm.serve.config import ServeConfig
from facevlm.serve.deps import GalleryName, secured
from facevlm.serve.openapi import errors

ClusterId = Annotated[str, Path(pattern=m.ID_PATTERN, description="a cluster id of the gallery (digits)")]


def router(cfg: ServeConfig) -> APIRouter:
    auth = (401,) if cfg.keys() else ()
    r = APIRouter(dependencies=secured(cfg.keys()), tags=["identity"], strict_content_type=False)
    writes = [Depends(json_only)]
    reads = errors(400, *auth, 404, 409, 413)

    @r.post(
        "/v1/galleries/{name}/clusters",
        response_model=m.ClusterList,
        status_code=201,
        dependencies=writes,
        responses=errors(400, *auth, 404, 409, 413, 415),
    )
    def run_clusters(
        request: Request, name: GalleryName, body: Annotated[m.ClusterRequest | None, Body()] = None
    ) -> m.ClusterList:
        """Cluster the gallery's unlabelled faces (a new run) and list the clusters."""
        state = request.app.state
        body = body or m.ClusterRequest()
        threshold = resolve_threshold(state.galleries.identity, cfg.identity.threshold, body.threshold).value
        with state.galleries.use(name) as opened:
            run = cluster_gallery(
                opened.gallery, name, threshold=threshold, method=body.method, max_faces=cfg.identity.max_cluster_faces
            )
            return m.ClusterList.build(run, name, _thumbs(opened.gallery, run.clusters))

    @r.get("/v1/galleries/{name}/clusters", response_model=m.ClusterList, responses=reads)
    def list_clusters(request: Request, name: GalleryName) -> m.ClusterList:
        """The clusters of the gallery's latest run, with the faces they still have."""
        with request.app.state.galleries.use(name) as opened:
            run = latest_run(opened.gallery, name)
            return m.ClusterList.build(run, name, _thumbs(opened.gallery, run.clusters if run else []))

    @r.get("/v1/galleries/{name}/clusters/{cluster_id}", response_model=m.ClusterResponse, responses=reads)
    def show_cluster(request: Request, name: GalleryName, cluster_id: ClusterId) -> m.ClusterResponse:
        with request.app.state.galleries.use(name) as opened:
            cluster = get_cluster(opened.gallery, name, int(cluster_id))
            return m.ClusterResponse.build(cluster, name, _thumbs(opened.gallery, [cluster]))

    @r.post(
        "/v1/galleries/{name}/clusters/{cluster_id}/name",
        response_model=m.ClusterResponse,
        dependencies=writes,
        responses=errors(400, *auth, 404, 409, 413, 415),
    )
    def name_one(
        request: Request, name: GalleryName, cluster_id: ClusterId, body: m.NameClusterRequest
    ) -> m.ClusterResponse:
        """Set `identity` on every face of the cluster (each can still be erased on its own)."""
        with request.app.state.galleries.use(name) as opened:
            cluster = name_cluster(opened.gallery, name, int(cluster_id), body.identity)
            return m.ClusterResponse.build(cluster, name, _thumbs(opened.gallery, [cluster]))

    return r


def _thumbs(gallery: Any, clusters: list[Any]) -> dict[int, bool]:
    """Which representatives have a stored thumbnail (its URL is the gallery's thumbnail route)."""
    ids = [i for c in clusters for i in c.representatives]
    rows = gallery.faces(ids)
    return {i: bool(rows[i].thumb) for i in ids if i in rows}
