"""The floor: the least a client can do — POST each prompt under a semaphore, write answers as JSONL.

Usage: python bench/floor_client.py BASE_URL PROMPTS.jsonl OUT.jsonl --concurrency N
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp


async def main(base_url: str, prompts_path: str, out_path: str, concurrency: int) -> None:
    rows = [json.loads(line) for line in open(prompts_path, encoding="utf-8") if line.strip()]
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    with open(out_path, "w", encoding="utf-8") as out:
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(row: dict) -> None:
                body = {"model": "fake", "messages": [{"role": "user", "content": row["prompt"]}]}
                async with gate, session.post(f"{base_url}/chat/completions", json=body) as response:
                    answer = await response.json()
                out.write(json.dumps({"id": row["id"], "output": answer["choices"][0]["message"]["content"]}) + "\n")

            await asyncio.gather(*(one(row) for row in rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("prompts")
    parser.add_argument("out")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.base_url, args.prompts, args.out, args.concurrency))
