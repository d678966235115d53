"""The chat app's view: the channels and contacts, a channel with its messages and a form to post, and a form to
start a direct message. Every post goes through `Chat.post`, as the sim tool's does."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world.chat import Channel, Chat

KIND_TITLES = {"public": "Public channels", "group": "Groups", "dm": "Direct messages"}


def _chat(request: Request) -> Chat:
    chat = world_of(request).chat
    if chat is None:
        raise BadRequest("this desktop has no chat", 404)
    return chat


def _home_page(request: Request, *, values: dict[str, str] | None = None, error: str = "",
               status: int = 200) -> Response:
    chat = _chat(request)
    groups = [(title, [c for c in chat.channels if c.kind == kind]) for kind, title in KIND_TITLES.items()]
    context = {"chat": chat, "groups": groups, "values": values or {}, "error": error}
    return render(request, "chat/index.html", context, status=status)


async def _home(request: Request) -> Response:
    return _home_page(request)


def _channel_page(request: Request, channel: Channel, *, text: str = "", error: str = "",
                  status: int = 200) -> Response:
    chat = _chat(request)
    messages = [{"author": chat.author_name(m.author), "mine": m.author == chat.handle, "time": m.time,
                 "text": m.text} for m in channel.messages]
    context = {"chat": chat, "channel": channel, "messages": messages, "text": text, "error": error}
    return render(request, "chat/channel.html", context, status=status)


def _channel_named(request: Request) -> Channel:
    try:
        return _chat(request).channel(request.path_params["id"])
    except ValueError as exc:
        raise BadRequest(str(exc), 404) from None


async def _channel(request: Request) -> Response:
    return _channel_page(request, _channel_named(request))


async def _post(request: Request) -> Response:
    channel = _channel_named(request)
    form = await read_form(request)
    text = form_text(form, "text", required=False)
    try:
        _chat(request).post(channel.id, text)
    except ValueError as exc:
        return _channel_page(request, channel, text=text, error=str(exc), status=400)
    return redirect(f"/chat/c/{quote(channel.id)}")


async def _direct(request: Request) -> Response:
    """A direct message to a contact (opening the conversation if there is none), as post_message to @handle."""
    form = await read_form(request)
    values = {k: form_text(form, k, required=False) for k in ("contact", "text")}
    try:
        posted = _chat(request).post(f"@{values['contact']}", values["text"])
    except ValueError as exc:
        return _home_page(request, values=values, error=str(exc), status=400)
    return redirect(f"/chat/c/{quote(posted.channel)}")


VIEW = DesktopView(
    app="chat", title="Chat", description="Channels and direct messages",
    routes=[Route("/", _home), Route("/direct", _direct, methods=["POST"]), Route("/c/{id}", _channel),
            Route("/c/{id}", _post, methods=["POST"])],
)
