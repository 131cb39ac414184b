#!/usr/bin/env python3
"""check_blocks.py DIR: validates every Slack incoming-webhook body (*.json) in DIR with slack_sdk
3.48.0's Block Kit models (docs/tooling.md §5). Exit 0 when all pass; otherwise exit 1 with one line
per problem, "FILE: problem". Exit 2 on usage errors.

Checks per body:
  - `text` is set, non-empty and at most 4000 characters (the notification/fallback text);
  - no legacy `attachments`; `unfurl_links`/`unfurl_media`, when present, are false;
  - at most 50 blocks; each parses with `Block.parse` to a known block class (the generic `Block`
    class means Slack would refuse an unknown type) and passes `validate_json()` (length and count
    limits); `to_dict()` of the parsed block equals the input (nothing dropped or unknown);
  - no buttons (they need an app with interactivity); no empty text objects; all block text
    together under 8 KB (docs/alerting.md §4.3).
"""

import json
import os
import sys

try:
    from slack_sdk.models.blocks import Block
    from slack_sdk.errors import SlackObjectFormationError
except ImportError:  # pragma: no cover - reported to the caller
    print("check_blocks: slack_sdk is not installed; run scripts/setup-validators.sh", file=sys.stderr)
    sys.exit(3)

MAX_BLOCKS = 50
TEXT_MAX = 4000
BLOCK_TEXT_BUDGET = 8 * 1024


def texts(node):
    """Every text object's text under node."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn"):
            yield node.get("text")
        for v in node.values():
            yield from texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from texts(v)


def types(node):
    """Every "type" value under node."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            yield node["type"]
        for v in node.values():
            yield from types(v)
    elif isinstance(node, list):
        for v in node:
            yield from types(v)


def check(raw):
    problems = []
    try:
        body = json.loads(raw)
    except ValueError as e:
        return [f"not JSON: {e}"]
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text is missing or empty")
    elif len(text) > TEXT_MAX:
        problems.append(f"text is {len(text)} characters, over {TEXT_MAX}")
    if "attachments" in body:
        problems.append("legacy attachments are not used")
    for key in ("unfurl_links", "unfurl_media"):
        if key in body and body[key] is not False:
            problems.append(f"{key} must be false")
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list):
        return problems + ["blocks is not a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks, over {MAX_BLOCKS}")
    total = 0
    for i, raw_block in enumerate(blocks):
        where = f"blocks[{i}]"
        try:
            block = Block.parse(raw_block)
        except Exception as e:  # noqa: BLE001 - any parse failure is a finding
            problems.append(f"{where}: does not parse: {e}")
            continue
        if block is None or type(block) is Block:
            problems.append(f"{where}: unknown block type {raw_block.get('type')!r}")
            continue
        try:
            block.validate_json()
        except SlackObjectFormationError as e:
            problems.append(f"{where} ({raw_block.get('type')}): {e}")
        else:
            if block.to_dict() != raw_block:
                problems.append(f"{where}: parsed block differs from the input (unknown or dropped fields)")
        if "button" in types(raw_block):
            problems.append(f"{where}: buttons need a Slack app with interactivity; use mrkdwn links")
        for t in texts(raw_block):
            if not isinstance(t, str) or not t.strip():
                problems.append(f"{where}: empty text object")
            else:
                total += len(t.encode("utf-8"))
    if total >= BLOCK_TEXT_BUDGET:
        problems.append(f"{total} bytes of block text, not under {BLOCK_TEXT_BUDGET}")
    return problems


def main():
    if len(sys.argv) != 2:
        print("usage: check_blocks.py DIR", file=sys.stderr)
        return 2
    directory = sys.argv[1]
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        print(f"check_blocks: no .json files in {directory}", file=sys.stderr)
        return 2
    failed = 0
    for name in files:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            problems = check(f.read())
        for p in problems:
            print(f"{name}: {p}")
        failed += bool(problems)
    print(f"check_blocks: {len(files) - failed} of {len(files)} messages valid")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
