"""The mail app's view: folders, a mail opened (which marks it read, as read_mail does), and the forms to write,
reply and forward, with attachments from the world's files or written in place. Every change goes through the
`Mailbox` methods the sim tools use (`open`, `send`, `reply`, `forward`)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world.mail import SENT_FOLDER, Attachment, Mailbox
from envs.world.validation_messages import describe_problems

# Links in a mail's text are shown as links (only web addresses: never javascript: or file:).
_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def _mailbox(request: Request) -> Mailbox:
    mailbox = world_of(request).mail
    if mailbox is None:
        raise BadRequest("this desktop has no mail", 404)
    return mailbox


def text_with_links(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_link) so the template writes each link as <a> and escapes everything."""
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group().rstrip(".,;:!?")
        pieces += [(text[last:match.start()], False), (url, True)]
        last = match.start() + len(url)
    pieces.append((text[last:], False))
    return [(piece, link) for piece, link in pieces if piece]


def _attachable(request: Request) -> list[str]:
    """Files a mail can carry: the world's files (by path), as the sim tools' `{path}` attachments name them."""
    files = world_of(request).files
    return sorted(files.files) if files is not None else []


def _attachments(form: FormData, request: Request) -> list[Attachment]:
    """The ticked files (`attach`, paths) and, if named, one attachment written in place."""
    allowed = set(_attachable(request))
    chosen = []
    for path in form.getlist("attach"):
        if not isinstance(path, str) or path not in allowed:
            raise ValueError(f"cannot attach {str(path)[:80]!r}: not a file of this desktop")
        chosen.append(Attachment(path=path))
    name, content = form_text(form, "attachment_name", required=False), form_text(form, "attachment_text",
                                                                                  required=False)
    if name.strip() or content.strip():
        if not name.strip():
            raise ValueError("the written attachment needs a file name")
        try:
            chosen.append(Attachment(name=name.strip(), content=content))
        except ValidationError as exc:  # too long a name or text: said as the tools say it
            raise ValueError(f"the written attachment: {describe_problems(exc)}") from None
    return chosen


def _folder_page(request: Request, *, notice: str = "") -> Response:
    mailbox = _mailbox(request)
    folder = request.query_params.get("folder", "inbox")
    if folder == SENT_FOLDER:
        context: dict[str, Any] = {"sent": mailbox.sent, "messages": None}
    else:
        try:
            context = {"messages": mailbox.in_folder(folder), "sent": None}
        except ValueError as exc:
            raise BadRequest(str(exc), 404) from None
    context.update(folder=folder, folders=[*mailbox.folders, SENT_FOLDER], mailbox=mailbox, notice=notice)
    return render(request, "mail/folder.html", context)


async def _index(request: Request) -> Response:
    notice = ""
    if sent_id := request.query_params.get("sent"):  # looked up, never echoed: the page says only what happened
        sent = next((s for s in _mailbox(request).sent if s.id == sent_id), None)
        notice = f"Sent {sent.id} to: {', '.join(sent.recipients())}" if sent else ""
    return _folder_page(request, notice=notice)


async def _message(request: Request) -> Response:
    mailbox = _mailbox(request)
    try:
        message = mailbox.open(request.path_params["id"])
    except ValueError as exc:
        raise BadRequest(str(exc), 404) from None
    return render(request, "mail/message.html", {"message": message, "body": text_with_links(message.body),
                                                 "mailbox": mailbox})


async def _sent(request: Request) -> Response:
    try:
        sent = _mailbox(request).sent_mail(request.path_params["id"])
    except ValueError as exc:
        raise BadRequest(str(exc), 404) from None
    return render(request, "mail/sent.html", {"sent": sent, "body": text_with_links(sent.body)})


def _form_page(request: Request, mode: str, *, values: dict[str, str] | None = None, error: str = "",
               status: int = 200) -> Response:
    """The compose form: a new mail, a reply (`all` replies to everyone) or a forward of message `id`."""
    mailbox = _mailbox(request)
    original = None
    if mode != "new":
        try:
            original = mailbox.message(request.path_params["id"])
        except ValueError as exc:
            raise BadRequest(str(exc), 404) from None
    reply_all = mode == "reply" and (request.query_params.get("all") == "1" or (values or {}).get("reply_all") == "1")
    if original is None:
        heading, action = "New mail", "/mail/compose"
    else:
        label = {"reply": "Reply all" if reply_all else "Reply", "forward": "Forward"}[mode]
        heading, action = f"{label}: {original.subject}", f"/mail/message/{quote(original.id)}/{mode}"
    context = {"heading": heading, "action": action, "mode": mode, "original": original, "reply_all": reply_all,
               "values": values or {}, "error": error, "mailbox": mailbox,
               "attachable": _attachable(request) if mode != "forward" else []}
    return render(request, "mail/compose.html", context, status=status)


async def _compose_form(request: Request) -> Response:
    return _form_page(request, "new")


async def _reply_form(request: Request) -> Response:
    return _form_page(request, "reply")


async def _forward_form(request: Request) -> Response:
    return _form_page(request, "forward")


async def _submit(request: Request, mode: str) -> Response:
    mailbox = _mailbox(request)
    form = await read_form(request)
    values = {k: form_text(form, k, required=False) for k in ("to", "cc", "bcc", "subject", "body", "reply_all",
                                                             "attachment_name", "attachment_text")}
    try:
        if mode == "new":
            sent = mailbox.send(to=values["to"], cc=values["cc"], bcc=values["bcc"], subject=values["subject"],
                                body=values["body"], attachments=_attachments(form, request))
        elif mode == "reply":
            sent = mailbox.reply(request.path_params["id"], body=values["body"],
                                 reply_all=values["reply_all"] == "1",
                                 attachments=_attachments(form, request))
        else:
            sent = mailbox.forward(request.path_params["id"], to=values["to"], cc=values["cc"], bcc=values["bcc"],
                                   body=values["body"])
    except ValueError as exc:
        return _form_page(request, mode, values=values, error=str(exc), status=400)
    return redirect("/mail/?" + urlencode({"folder": SENT_FOLDER, "sent": sent.id}))


async def _send_new(request: Request) -> Response:
    return await _submit(request, "new")


async def _send_reply(request: Request) -> Response:
    return await _submit(request, "reply")


async def _send_forward(request: Request) -> Response:
    return await _submit(request, "forward")


VIEW = DesktopView(
    app="mail", title="Mail", description="Your mailbox",
    routes=[Route("/", _index), Route("/compose", _compose_form), Route("/compose", _send_new, methods=["POST"]),
            Route("/message/{id}", _message), Route("/message/{id}/reply", _reply_form),
            Route("/message/{id}/reply", _send_reply, methods=["POST"]),
            Route("/message/{id}/forward", _forward_form),
            Route("/message/{id}/forward", _send_forward, methods=["POST"]),
            Route("/sent/{id}", _sent)],
)
