"""A small client of ComfyUI's HTTP and websocket API: queue a prompt, follow it, fetch its images."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class ComfyRequestError(RuntimeError):
    """ComfyUI refused a request or a prompt failed; the message is what ComfyUI said, made readable."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}


@dataclass
class PromptResult:
    prompt_id: str
    status: str  # "success" | "error" | "interrupted"
    outputs: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)
    error: dict | None = None

    def images(self, folder_type: str = "output") -> list[tuple[str, dict]]:
        """(node id, {"filename", "subfolder", "type"}) of every image the prompt's output nodes saved."""
        found = []
        for node_id, output in self.outputs.items():
            for image in output.get("images", []):
                if image.get("type") == folder_type:
                    found.append((node_id, image))
        return found


def format_node_errors(response: dict) -> str:
    lines = [response.get("error", {}).get("message", "ComfyUI rejected the prompt")]
    details = response.get("error", {}).get("details")
    if details:
        lines[0] += f": {details}"
    for node_id, node in (response.get("node_errors") or {}).items():
        for err in node.get("errors", []):
            lines.append(f"  node {node_id} ({node.get('class_type')}): {err.get('message')} — {err.get('details')}")
    return "\n".join(lines)


def format_execution_error(error: dict) -> str:
    return (f"node {error.get('node_id')} ({error.get('node_type')}) failed: "
            f"{error.get('exception_type', '')}: {error.get('exception_message', '').strip()}")


class ComfyClient:
    def __init__(self, url: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex
        self._object_info: dict | None = None

    def _request(self, path: str, data: bytes | None = None, headers: dict | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            try:
                details = json.loads(body)
            except json.JSONDecodeError:
                details = {"error": {"message": body}}
            raise ComfyRequestError(format_node_errors(details) if "error" in details else body, details) from None
        except urllib.error.URLError as exc:
            raise ComfyRequestError(f"ComfyUI at {self.url} is not reachable: {exc.reason}") from None

    def get_json(self, path: str):
        return json.loads(self._request(path))

    def post_json(self, path: str, payload: dict):
        body = self._request(path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        return json.loads(body) if body else None

    def object_info(self) -> dict:
        if self._object_info is None:
            self._object_info = self.get_json("/object_info")
        return self._object_info

    def upload_image(self, path: str | Path, name: str | None = None) -> str:
        """Upload a file into ComfyUI's input folder; returns the name a LoadImage node takes."""
        path = Path(path)
        name = name or path.name
        boundary = uuid.uuid4().hex
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
            f'Content-Type: {mime}\r\n\r\n'.encode() + path.read_bytes() + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        reply = json.loads(self._request("/upload/image", b"".join(parts),
                                         {"Content-Type": f"multipart/form-data; boundary={boundary}"}))
        return f"{reply['subfolder']}/{reply['name']}" if reply.get("subfolder") else reply["name"]

    def queue(self, prompt: dict, extra_data: dict | None = None) -> str:
        payload = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        reply = self.post_json("/prompt", payload)
        if reply.get("node_errors"):
            raise ComfyRequestError(format_node_errors(reply), reply)
        return reply["prompt_id"]

    def interrupt(self) -> None:
        self._request("/interrupt", b"{}", {"Content-Type": "application/json"})

    def history(self, prompt_id: str) -> dict | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image.get(k, "") for k in ("filename", "subfolder", "type")})
        return self._request(f"/view?{query}")

    def wait(self, prompt_id: str, timeout: float = 600.0) -> PromptResult:
        """Poll a queued prompt's history until it ends."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "success":
                    return PromptResult(prompt_id, "success", entry.get("outputs", {}), status.get("messages", []))
                messages = status.get("messages", [])
                error = next((m[1] for m in messages if m[0] == "execution_error"), None)
                interrupted = any(m[0] == "execution_interrupted" for m in messages)
                return PromptResult(prompt_id, "interrupted" if interrupted else "error",
                                    entry.get("outputs", {}), messages, error)
            if time.monotonic() > deadline:
                raise ComfyRequestError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
            time.sleep(0.2)

    def run(self, prompt: dict, timeout: float = 600.0,
            on_event: Callable[[str, dict], None] | None = None) -> PromptResult:
        """Queue ``prompt`` and wait for its end; ``on_event(type, data)`` receives ComfyUI's websocket events for
        it (executing, progress, executed, execution_error...). The socket opens before queueing, so no event is
        missed."""
        if on_event is None:
            return self.wait(self.queue(prompt), timeout)
        prompt_id = asyncio.run(asyncio.wait_for(self._queue_and_follow(prompt, on_event), timeout))
        return self.wait(prompt_id, timeout)

    async def _queue_and_follow(self, prompt: dict, on_event: Callable[[str, dict], None]) -> str:
        import aiohttp

        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
            prompt_id = self.queue(prompt)
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                data = event.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                on_event(event["type"], data)
                if event["type"] in ("execution_error", "execution_interrupted", "execution_success"):
                    break
                if event["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                    break
        return prompt_id
