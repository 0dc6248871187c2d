module gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib

go 1.11
