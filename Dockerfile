# mini-baas node image: built with the Swift toolchain, run on a slim Debian as a non-root user.
# Swift >= 6.2 is required: several dependencies (Hummingbird, hummingbird-websocket,
# async-http-client, swift-log, swift-service-lifecycle, ...) declare swift-tools-version 6.2.
# Not built on the development machines (no Docker engine there): see docs/operations.md.
FROM swift:6.2-bookworm AS build
# Headers of the system libraries the package links (CHiredis, CLibPQ, CCrypt, CMongoc) and SQLite.
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis-dev libpq-dev libsqlite3-dev libcrypt-dev libvips-dev liburing-dev libmongoc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Benchmarks ./Benchmarks
COPY Tests ./Tests
# Cross-module optimisation as in the benchmarks (scripts/lib/services.sh: RELEASE_SWIFT_FLAGS).
RUN swift build -c release -Xswiftc -cross-module-optimization --product minibaas --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/minibaas" /out/minibaas

# The Swift runtime is linked statically, so the run stage needs only the C libraries.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libsqlite3-0 libcrypt1 libhiredis0.14 libpq5 libvips42 liburing2 libmongoc-1.0-0 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 minibaas && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin minibaas \
 && install -d -o 10001 -g 10001 /data
COPY --from=build /out/minibaas /usr/local/bin/minibaas
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/minibaas"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--data-dir", "/data"]
