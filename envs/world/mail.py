"""The mail app's state: the user's mailbox (received mail in folders, read flags) and the mails the user sent, kept
as typed records the checks read. Every change is a method here, called by the sim tools (envs/apps/mail.py) and by
the desktop's mail view alike, so either surface ends in the same state."""

from __future__ import annotations

import posixpath

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.world.addresses import bare_address, normalize_address, split_addresses

MAX_RECIPIENTS = 50
MAX_ATTACHMENTS = 20
MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit
MAX_BODY_CHARS = 32_768
SENT_FOLDER = "sent"
SENT_PREFIX = "sent-"  # ids of sent mail: sent-1, sent-2, ...


class Attachment(BaseModel):
    """A file on a mail: its `content` (text), or `path`, a file of the world's files app it was attached from
    (checks read that file's content from the world)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=255)
    content: str = Field(default="", max_length=MAX_BODY_CHARS)
    path: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _named(self) -> Attachment:
        if not self.name and self.path:
            self.name = posixpath.basename(self.path.rstrip("/"))
        if not self.name:
            raise ValueError("an attachment needs a name or a path")
        return self


class MailMessage(BaseModel):
    """A received mail (seeded by the scenario). `from` is accepted for `sender` in scenario files."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    folder: str = "inbox"
    sender: str = Field(validation_alias=AliasChoices("sender", "from"))
    sender_name: str = ""
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    subject: str = ""
    body: str = ""
    date: str = ""  # shown as written, e.g. "Mon 3 Mar, 09:12"
    attachments: list[Attachment] = Field(default_factory=list)
    read: bool = False

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str) -> str:
        bare_address(sender)
        return sender

    @field_validator("to", "cc")
    @classmethod
    def _recipients(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            bare_address(address)
        return addresses


class SentMail(BaseModel):
    """A mail the user sent (new, reply or forward): what the checks judge."""

    model_config = ConfigDict(extra="forbid")
    id: str
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = ""
    body: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    in_reply_to: str | None = None  # the id of the message replied to
    forwarded_from: str | None = None  # the id of the message forwarded

    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


def _recipients(value: str | list[str], field: str) -> list[str]:
    addresses = split_addresses(value)
    if len(addresses) > MAX_RECIPIENTS:
        raise ValueError(f"{field}: {len(addresses)} recipients; at most {MAX_RECIPIENTS}")
    for address in addresses:
        try:
            bare_address(address)
        except ValueError as exc:
            raise ValueError(f"{field}: {exc}") from None
    return addresses


def _within_limits(subject: str, body: str) -> None:
    if len(subject) > MAX_SUBJECT_CHARS:
        raise ValueError(f"the subject is {len(subject)} characters; at most {MAX_SUBJECT_CHARS}")
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"the body is {len(body)} characters; at most {MAX_BODY_CHARS}")


class Mailbox(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = "user@example.test"
    name: str = "User"
    folders: list[str] = Field(default_factory=lambda: ["inbox", "archive", "trash"])
    messages: list[MailMessage] = Field(default_factory=list)
    sent: list[SentMail] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Mailbox:
        bare_address(self.address)
        ids = [m.id for m in self.messages]
        if len(set(ids)) != len(ids):
            raise ValueError(f"message ids must be unique, got {ids}")
        if any(i.startswith(SENT_PREFIX) for i in ids):  # read_mail reads sent mail by these ids
            raise ValueError(f"message ids starting {SENT_PREFIX!r} name sent mail; choose others, got {ids}")
        for m in self.messages:
            if m.folder not in self.folders:
                raise ValueError(f"message {m.id!r} is in folder {m.folder!r}, which is not one of folders "
                                 f"{self.folders}")
        if SENT_FOLDER in self.folders:
            raise ValueError(f"{SENT_FOLDER!r} is the mailbox's own folder of sent mail; do not list it in folders")
        return self

    # ---- reading --------------------------------------------------------------------------------------------

    def in_folder(self, folder: str) -> list[MailMessage]:
        if folder not in self.folders:
            raise ValueError(f"no folder {folder!r}; folders: {', '.join([*self.folders, SENT_FOLDER])}")
        return [m for m in self.messages if m.folder == folder]

    def message(self, message_id: str) -> MailMessage:
        for m in self.messages:
            if m.id == message_id:
                return m
        known = ", ".join(m.id for m in self.messages) or "none"
        raise ValueError(f"no message {message_id!r} (messages: {known})")

    def sent_mail(self, sent_id: str) -> SentMail:
        for s in self.sent:
            if s.id == sent_id:
                return s
        raise ValueError(f"no sent mail {sent_id!r}")

    def open(self, message_id: str) -> MailMessage:
        """The message, marked read (opening a mail is a change of state, whichever surface opens it)."""
        found = self.message(message_id)
        found.read = True
        return found

    # ---- changes --------------------------------------------------------------------------------------------

    def send(self, to: str | list[str], subject: str = "", body: str = "", cc: str | list[str] = "",
             bcc: str | list[str] = "", attachments: list[Attachment] | None = None,
             in_reply_to: str | None = None, forwarded_from: str | None = None) -> SentMail:
        """Send a new mail; recipients as a list or one text separated by commas. Raises ValueError for a bad one."""
        _within_limits(subject, body)
        return self._deliver(to, subject, body, cc, bcc, attachments, in_reply_to, forwarded_from)

    def _deliver(self, to: str | list[str], subject: str, body: str, cc: str | list[str], bcc: str | list[str],
                 attachments: list[Attachment] | None, in_reply_to: str | None,
                 forwarded_from: str | None) -> SentMail:
        mail = SentMail(id=f"{SENT_PREFIX}{len(self.sent) + 1}", to=_recipients(to, "to"), cc=_recipients(cc, "cc"),
                        bcc=_recipients(bcc, "bcc"), subject=subject.strip(), body=body,
                        attachments=list(attachments or []), in_reply_to=in_reply_to, forwarded_from=forwarded_from)
        if not mail.recipients():
            raise ValueError("the mail has no recipient: give at least one address in to, cc or bcc")
        if len(mail.recipients()) > MAX_RECIPIENTS:
            raise ValueError(f"{len(mail.recipients())} recipients in all; at most {MAX_RECIPIENTS}")
        if len(mail.attachments) > MAX_ATTACHMENTS:
            raise ValueError(f"{len(mail.attachments)} attachments; at most {MAX_ATTACHMENTS}")
        self.sent.append(mail)
        return mail

    def reply(self, message_id: str, body: str, reply_all: bool = False,
              attachments: list[Attachment] | None = None) -> SentMail:
        """Reply to a received message: to its sender (and, with reply_all, its other recipients but the user)."""
        original = self.message(message_id)
        own = normalize_address(self.address)
        cc = [a for a in [*original.to, *original.cc] if normalize_address(a) != own] if reply_all else []
        subject = original.subject if original.subject.lower().startswith("re:") else f"Re: {original.subject}"
        return self.send(to=[original.sender], cc=cc, subject=subject, body=body, attachments=attachments,
                         in_reply_to=original.id)

    def forward(self, message_id: str, to: str | list[str], body: str = "", cc: str | list[str] = "",
                bcc: str | list[str] = "") -> SentMail:
        """Forward a received message with its attachments; `body` is written above the quoted original."""
        _within_limits("", body)
        original = self.message(message_id)
        subject = original.subject if original.subject.lower().startswith("fwd:") else f"Fwd: {original.subject}"
        quoted = (f"---------- Forwarded message ----------\nFrom: {original.sender}\nSubject: {original.subject}\n\n"
                  f"{original.body}")
        text = f"{body}\n\n{quoted}" if body.strip() else quoted
        return self._deliver(to, subject, text, cc, bcc, [a.model_copy() for a in original.attachments],
                             in_reply_to=None, forwarded_from=original.id)
