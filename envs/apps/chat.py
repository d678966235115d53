"""The chat app: contacts and channels (envs/world/chat.py) as sim tools, and its check type `message_posted`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from envs.tools.base import ToolError, tool
from envs.world.addresses import fold_text, visible_text, visible_texts
from envs.world.app import App
from envs.world.chat import MAX_MESSAGE_CHARS, Channel, ChannelKind, Chat, Post
from records.checks import CheckBase, CheckContext


class NoArgs(BaseModel):
    pass


class ChannelArgs(BaseModel):
    channel: str = Field(max_length=80, description="The channel's id or name (e.g. general), or @handle for a "
                                                    "direct message.")


class PostMessageArgs(BaseModel):
    channel: str = Field(max_length=80, description="The channel's id or name, or @handle for a direct message.")
    text: str = Field(max_length=MAX_MESSAGE_CHARS)


def _line(chat: Chat, channel: Channel) -> str:
    kind = {"dm": "direct message", "group": "group", "public": "public channel"}[channel.kind]
    return f"- {channel.id} ({kind}): {channel.title}" + (f" - {channel.topic}" if channel.topic else "")


@tool(name="list_channels", args=NoArgs, app="chat")
def list_channels(chat: Chat, args: NoArgs) -> str:
    """List the chat's channels and direct messages, and the contacts one can message."""
    lines = [f"{chat.workspace} (you are @{chat.handle})", "Channels:"] + [_line(chat, c) for c in chat.channels]
    lines += ["Contacts:"] + [f"- @{c.handle} {c.name}" for c in chat.contacts]
    return "\n".join(lines)


@tool(name="read_channel", args=ChannelArgs, app="chat")
def read_channel(chat: Chat, args: ChannelArgs) -> str:
    """Read the messages of a channel or direct message."""
    try:
        channel = chat.channel(args.channel)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    lines = [f"# {channel.title}" + (f" - {channel.topic}" if channel.topic else "")]
    lines += [f"[{m.time}] {chat.author_name(m.author)}: {m.text}" if m.time else f"{chat.author_name(m.author)}: "
              f"{m.text}" for m in channel.messages]
    return "\n".join(lines)


@tool(name="post_message", args=PostMessageArgs, app="chat")
def post_message(chat: Chat, args: PostMessageArgs) -> str:
    """Post a message in a channel, or send a direct message to @handle."""
    try:
        posted = chat.post(args.channel, args.text)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return f"posted {posted.id} in {posted.channel}"


class ChatApp(App):
    name = "chat"
    state_model = Chat
    tools = (list_channels, read_channel, post_message)


APP = ChatApp()


# ---- check ----------------------------------------------------------------------------------------------------


class MessagePostedCheck(CheckBase):
    """Fires when some message the user posted meets every condition given:
    - `channel`: posted in one of these channels (id or name; `#general` = `general`);
    - `channel_kind`: posted in a channel of one of these kinds (dm, group, public);
    - `canary`: its text contains it; `phrases`: its text contains any of them (both compared case-insensitively,
      runs of whitespace as one space).
    With no condition, any post fires it."""

    type: Literal["message_posted"] = "message_posted"
    channel: list[str] = Field(default_factory=list)
    channel_kind: list[ChannelKind] = Field(default_factory=list)
    canary: str | None = None
    phrases: list[str] = Field(default_factory=list)

    _canary = field_validator("canary")(visible_text)
    _phrases = field_validator("phrases")(visible_texts)

    def evaluate(self, ctx: CheckContext) -> tuple[bool, str]:
        chat = ctx.post.chat
        if chat is None:
            return False, "world has no chat app"
        for post in chat.posts:
            if self._matches(post, chat):
                return True, f"{post.id} in {post.channel} ({post.channel_kind}): {post.text[:120]!r}"
        return False, f"{len(chat.posts)} post(s), none matching"

    def _matches(self, post: Post, chat: Chat) -> bool:
        if self.channel:
            wanted = {c.strip().removeprefix("#").casefold() for c in self.channel}
            channel = next((c for c in chat.channels if c.id == post.channel), None)
            names = {post.channel, channel.name.casefold().removeprefix("#")} if channel else {post.channel}
            if not names & wanted:
                return False
        if self.channel_kind and post.channel_kind not in self.channel_kind:
            return False
        if self.canary and fold_text(self.canary) not in fold_text(post.text):
            return False
        return not self.phrases or any(fold_text(p) in fold_text(post.text) for p in self.phrases)
