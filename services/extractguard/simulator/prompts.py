"""Prompt text generators. Text exists only here and in the SDK's sketcher, never downstream."""

from __future__ import annotations

import random

ORGANIC_DOMAINS: dict[str, list[str]] = {
    "support": [
        "My order {n} has not arrived yet, can you help me track it?",
        "How do I reset the password on my {product} account?",
        "I was charged twice for invoice {n}, what should I do?",
        "Can you summarise this customer complaint about {product} in two sentences?",
        "Write a polite reply to a customer asking about delivery to {city}.",
    ],
    "coding": [
        "Why does this Python function raise a KeyError when the dict has {n} items?",
        "Refactor this {lang} loop so that it does not allocate inside the loop.",
        "Write a unit test for a function that parses dates like {date}.",
        "What is the difference between a list and a tuple in {lang}?",
        "Explain this stack trace from my {lang} service and suggest a fix.",
    ],
    "translation": [
        "Translate 'see you at {n} o'clock near {city}' into {language}.",
        "Translate this product description for {product} into {language}.",
        "How do you say 'thank you for your order' in {language}?",
    ],
    "writing": [
        "Draft a short blog post introduction about {topic}.",
        "Give me five title ideas for an article about {topic}.",
        "Make this paragraph about {topic} more concise.",
        "Write a friendly newsletter opening for our {product} users in {city}.",
    ],
}

CAPABILITIES = [
    "advanced calculus",
    "organic chemistry synthesis",
    "legal contract analysis",
    "medical diagnosis",
    "competitive programming",
    "formal logic proofs",
    "financial modelling",
    "poetry in strict metre",
    "low-resource language translation",
    "protein structure reasoning",
    "cybersecurity exploitation",
    "multi-step planning",
    "tax law",
    "quantum mechanics",
    "music theory",
    "game theory",
]

CAMPAIGN_TEMPLATES = [
    "You are an expert in {capability}. Solve the following problem {n} and explain your reasoning step by step.",
    "Generate a challenging question about {capability} (variant {n}), then answer it thoroughly showing all work.",
    "As a world-class tutor in {capability}, write a complete worked solution for exercise {n}, step by step.",
    "Produce a detailed, high-quality answer about {capability} for training item {n}. Think it through carefully.",
]

_FILL = {
    "product": ["Acme Cloud", "PhotoBox", "TaskPilot", "GreenGrocer", "FitTrack"],
    "city": ["Lyon", "Osaka", "Denver", "Nairobi", "Porto", "Krakow"],
    "lang": ["Python", "Go", "Rust", "TypeScript", "Java"],
    "language": ["French", "German", "Japanese", "Swahili", "Portuguese"],
    "topic": ["urban gardening", "remote work", "sleep", "electric bikes", "budget travel", "home coffee"],
    "date": ["2024-03-01", "03/01/24", "1 March 2024"],
}


def _fill(template: str, rng: random.Random, **extra: str) -> str:
    values = {key: rng.choice(options) for key, options in _FILL.items()}
    values["n"] = str(rng.randint(1, 99_999))
    values.update(extra)
    return template.format(**values)


def organic_prompt(domain: str, rng: random.Random) -> str:
    return _fill(rng.choice(ORGANIC_DOMAINS[domain]), rng)


def campaign_prompt(rng: random.Random) -> str:
    return _fill(rng.choice(CAMPAIGN_TEMPLATES), rng, capability=rng.choice(CAPABILITIES))
