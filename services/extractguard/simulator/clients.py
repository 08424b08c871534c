"""The client stacks real API traffic is made of, as a gateway sees them: user agent, SDK, TLS (JA4).

Several actors, organic and not, use the same stacks: every Python HTTP library on one OpenSSL
build presents the same TLS fingerprint, and the OpenAI SDKs dominate. A campaign that names these
(`Fingerprint.clients`) is indistinguishable by client from the organic users of the same stack.
"""

from __future__ import annotations

#: TLS stacks behind the commodity clients: every Python HTTP library on one OpenSSL looks alike.
PYTHON_JA4 = "t13d1812h1_85036bcba153_b26ce05bbdaa"
PYTHON_JA4_OLD = "t13d1712h1_5b57614c22b0_ef7df7f74e48"
NODE_JA4 = "t13d1516h2_8daaf6152771_e5627efa2ab1"
CURL_JA4 = "t13d3113h1_e8f1e7e78f70_ce5650b735ce"
CHROME_JA4 = "t13d1516h2_8daaf6152771_02713d6af862"
FIREFOX_JA4 = "t13d1715h2_5b57614c22b0_3d5424432f57"
#: The client stacks real API traffic is made of (`OrganicSpec.clients: commodity`), most common
#: first: (user agent, SDK, JA4). Campaigns that name them (`Fingerprint.clients`) look exactly like
#: every organic user of the same stack.
CLIENTS: dict[str, tuple[str, str, str]] = {
    "openai-python": ("OpenAI/Python 1.54.4", "openai-python", PYTHON_JA4),
    "browser-chrome": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", "browser", CHROME_JA4),
    "openai-node": ("OpenAI/JS 4.73.0", "openai-node", NODE_JA4),
    "httpx": ("python-httpx/0.27.2", "httpx", PYTHON_JA4),
    "requests": ("python-requests/2.32.3", "requests", PYTHON_JA4),
    "langchain": ("langchain-openai/0.2.9", "langchain", PYTHON_JA4),
    "browser-firefox": ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0", "browser", FIREFOX_JA4),
    "aiohttp": ("Python/3.11 aiohttp/3.10.10", "aiohttp", PYTHON_JA4),
    "openai-python-old": ("OpenAI/Python 1.12.0", "openai-python", PYTHON_JA4_OLD),
    "curl": ("curl/8.5.0", "curl", CURL_JA4),
}
#: Clients an app backend calls from (no browser).
SERVER_CLIENTS = [name for name, (_, sdk, _) in CLIENTS.items() if sdk != "browser"]
