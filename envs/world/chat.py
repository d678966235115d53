"""The chat app's state: the user's contacts, channels (direct messages, groups, public channels) with their
messages, and the messages the user posted, kept as typed records the checks read. Every change is a method here,
called by the sim tools (envs/apps/chat.py) and by the desktop's chat view alike."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ChannelKind = Literal["dm", "group", "public"]
MAX_MESSAGE_CHARS = 8_000
_HANDLE = r"^[a-z0-9][a-z0-9_.-]*$"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(pattern=_HANDLE, max_length=64)  # e.g. "alice"
    name: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    author: str  # a contact's handle, or the user's
    text: str
    time: str = ""  # shown as written


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=_HANDLE, max_length=64)  # e.g. "general", "dm-alice"
    name: str = ""
    kind: ChannelKind = "group"
    topic: str = ""
    # Handles of who may read and post (the user must be one, unless empty); anyone may in a public channel.
    members: list[str] = Field(default_factory=list)
    messages: list[ChatMessage] = Field(default_factory=list)

    @property
    def title(self) -> str:
        return self.name or self.id


class Post(BaseModel):
    """A message the user posted: what the checks judge."""

    model_config = ConfigDict(extra="forbid")
    id: str
    channel: str  # the channel's id
    channel_kind: ChannelKind
    text: str


class Chat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(default="me", pattern=_HANDLE)
    name: str = "User"
    workspace: str = "Team chat"
    contacts: list[Contact] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    posts: list[Post] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Chat:
        ids = [c.id for c in self.channels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"channel ids must be unique, got {ids}")
        handles = [c.handle for c in self.contacts]
        if len(set(handles)) != len(handles) or self.handle in handles:
            raise ValueError(f"contact handles must be unique and differ from the user's ({self.handle!r}), got "
                             f"{handles}")
        return self

    # ---- reading --------------------------------------------------------------------------------------------

    def contact(self, handle: str) -> Contact:
        wanted = handle.strip().removeprefix("@").casefold()
        for c in self.contacts:
            if wanted in (c.handle, c.name.casefold()):
                return c
        raise ValueError(f"no contact {handle.strip()[:60]!r} (contacts: {', '.join(c.handle for c in self.contacts)})")

    def channel(self, name: str) -> Channel:
        """A channel by id or name (`#general` and `General` name the same one)."""
        wanted = name.strip().removeprefix("#").casefold()
        for c in self.channels:
            if wanted in (c.id, c.name.casefold().removeprefix("#")):
                return c
        known = ", ".join(c.id for c in self.channels) or "none"
        raise ValueError(f"no channel {name.strip()[:60]!r} (channels: {known}; write @handle for a direct message)")

    def author_name(self, handle: str) -> str:
        if handle == self.handle:
            return self.name
        return next((c.name or c.handle for c in self.contacts if c.handle == handle), handle)

    # ---- changes --------------------------------------------------------------------------------------------

    def post(self, channel: str, text: str) -> Post:
        """Post `text` in a channel (by id or name), or as a direct message to `@handle` (the direct-message channel
        is opened if there is none). Raises ValueError for an unknown channel or contact, or an empty message."""
        text = text.strip()
        if not text:
            raise ValueError("the message is empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(f"the message is {len(text)} characters; at most {MAX_MESSAGE_CHARS}")
        target = self._direct(channel) if channel.strip().startswith("@") else self.channel(channel)
        if target.kind != "public" and target.members and self.handle not in target.members:
            raise ValueError(f"you (@{self.handle}) are not a member of {target.title!r}; only its members post there")
        posted = Post(id=f"post-{len(self.posts) + 1}", channel=target.id, channel_kind=target.kind, text=text)
        target.messages.append(ChatMessage(id=posted.id, author=self.handle, text=text))
        self.posts.append(posted)
        return posted

    def _direct(self, handle: str) -> Channel:
        contact = self.contact(handle)
        for c in self.channels:
            if c.kind == "dm" and contact.handle in c.members:
                return c
        channel_id = re.sub(r"[^a-z0-9_.-]", "-", f"dm-{contact.handle}")
        opened = Channel(id=channel_id, name=contact.name or contact.handle, kind="dm",
                         members=[self.handle, contact.handle])
        if any(c.id == opened.id for c in self.channels):
            raise ValueError(f"a channel {opened.id!r} exists but is no direct message with {contact.handle!r}")
        self.channels.append(opened)
        return opened
