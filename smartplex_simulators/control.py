"""The ``/_sim`` control endpoints every simulator serves: faults, clock, mutations, webhook log and back-off.

They mirror :class:`Simulation`'s Python API so the demo and other processes can drive a running
simulation over HTTP. They need no credential and ignore injected faults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartplex_simulators._app import json_response
from smartplex_simulators.universe import Episode, Movie, Play, Show
from smartplex_simulators.universe import Request as MediaRequest

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation


def summary(thing: Movie | Show | Episode | Play | MediaRequest) -> dict[str, Any]:
    """The ids a caller needs to find what a mutation made in each service."""
    if isinstance(thing, Movie):
        return {
            "id": thing.id,
            "tmdbId": thing.tmdb_id,
            "imdbId": thing.imdb_id,
            "ratingKey": thing.rating_key,
            "title": thing.title,
        }
    if isinstance(thing, Show):
        return {
            "id": thing.id,
            "tvdbId": thing.tvdb_id,
            "ratingKey": thing.rating_key,
            "title": thing.title,
            "episodes": [{"id": e.id, "ratingKey": e.rating_key} for e in thing.episodes],
        }
    if isinstance(thing, Episode):
        return {"id": thing.id, "seriesId": thing.show.id, "ratingKey": thing.rating_key}
    if isinstance(thing, Play):
        return {"id": thing.id, "ratingKey": thing.rating_key, "started": thing.started, "stopped": thing.stopped}
    return {"id": thing.id, "status": thing.status, "mediaId": thing.media_id}


def control_routes(simulation: Simulation, instance_id: str) -> list[Route]:
    faults = simulation.faults[instance_id]

    def mutation(action: Callable[[dict[str, Any], dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                body = await request.json() if await request.body() else {}
            except ValueError:
                return json_response({"error": "the body must be JSON"}, 400)
            try:
                # Mutations may post webhooks; keep that off the event loop.
                result = await run_in_threadpool(action, request.path_params, body)
            except KeyError as exc:
                return json_response({"error": f"not found: {exc}"}, 404)
            except (TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, 400)
            return json_response(summary(result) if not isinstance(result, dict) else result)

        return endpoint

    async def get_faults(request: Request) -> Response:
        return json_response(faults.as_dict())

    async def put_faults(request: Request) -> Response:
        try:
            faults.update(**await request.json())
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(faults.as_dict())

    async def delete_faults(request: Request) -> Response:
        faults.clear()
        return json_response(faults.as_dict())

    async def get_clock(request: Request) -> Response:
        return json_response({"now": simulation.universe.now})

    async def deliveries(request: Request) -> Response:
        return json_response([asdict(d) for d in simulation.webhooks.deliveries])

    async def connection_statuses(request: Request) -> Response:
        sender = simulation.webhooks
        now = sender.clock()
        return json_response({instance_id: s.as_json(now) for instance_id, s in sender.statuses().items()})

    s = simulation
    return [
        Route("/faults", get_faults, methods=["GET"]),
        Route("/faults", put_faults, methods=["PUT"]),
        Route("/faults", delete_faults, methods=["DELETE"]),
        Route("/clock", get_clock, methods=["GET"]),
        Route("/clock/advance", mutation(lambda p, b: {"now": s.advance_clock(int(b["seconds"]))}), methods=["POST"]),
        Route(
            "/movies",
            mutation(lambda p, b: s.add_movie(b.get("title"), with_file=b.get("with_file", True))),
            methods=["POST"],
        ),
        Route("/movies/{id:int}", mutation(lambda p, b: s.update_movie(p["id"], title=b["title"])), methods=["PATCH"]),
        Route("/movies/{id:int}", mutation(lambda p, b: s.delete_movie(p["id"])), methods=["DELETE"]),
        Route("/movies/{id:int}/file", mutation(lambda p, b: s.delete_movie_file(p["id"])), methods=["DELETE"]),
        Route(
            "/series",
            mutation(
                lambda p, b: s.add_show(
                    b.get("title"), seasons=b.get("seasons", 1), episodes_per_season=b.get("episodes_per_season", 8)
                )
            ),
            methods=["POST"],
        ),
        Route("/series/{id:int}", mutation(lambda p, b: s.delete_series(p["id"])), methods=["DELETE"]),
        Route("/episodes/{id:int}/file", mutation(lambda p, b: s.delete_episode_file(p["id"])), methods=["DELETE"]),
        Route(
            "/plays",
            mutation(
                lambda p, b: s.record_play(
                    int(b["rating_key"]),
                    user_id=b.get("user_id", 1),
                    percent=b.get("percent", 100),
                    minutes=b.get("minutes", 45),
                )
            ),
            methods=["POST"],
        ),
        Route(
            "/requests",
            mutation(
                lambda p, b: s.request_media(
                    movie_id=b.get("movie_id"), series_id=b.get("series_id"), user_id=b.get("user_id", 2)
                )
            ),
            methods=["POST"],
        ),
        Route("/requests/{id:int}/approve", mutation(lambda p, b: s.approve_request(p["id"])), methods=["POST"]),
        Route(
            "/requests/{id:int}/decline",
            mutation(lambda p, b: s.approve_request(p["id"], approve=False)),
            methods=["POST"],
        ),
        Route("/webhooks", deliveries, methods=["GET"]),
        Route("/webhooks/status", connection_statuses, methods=["GET"]),
    ]
