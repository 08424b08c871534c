"""Campaign indicators shared with peers: export a campaign as a STIX 2.1 bundle, import a peer's
bundle as a watchlist the linker treats as prior evidence (`campaigns.watchlist`)."""
