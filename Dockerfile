# smig: the data plane, the three control-plane services and smigctl in one image.
#   docker build -t smig:dev .          (see docs/deploy.md)
# tests/deploy/check_dockerfile.mjs checks that every binary copied below is one the CMake
# sources build, and tests/deploy/check_runtime_libs.mjs that the runtime packages (with apt's dependencies) cover
# every shared library those binaries load.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config protobuf-compiler protobuf-compiler-grpc \
      libprotobuf-dev libgrpc++-dev libabsl-dev prometheus-cpp-dev libusrsctp-dev libsctp-dev \
      libssl-dev libcurl4-openssl-dev libgoogle-glog-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The default preset (build/, RelWithDebInfo, Ninja), without tests and benchmarks: the
# image needs neither, nor GoogleTest or Google Benchmark.
RUN cmake --preset default -DSMIG_BUILD_TESTS=OFF -DSMIG_BUILD_BENCH=OFF \
 && cmake --build --preset default

FROM debian:bookworm-slim
# The packages owning the shared libraries the binaries load (libc6, libgcc-s1, libstdc++6
# and zlib1g come with the base image). Keep in step with the -dev packages above.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libc-ares2 libcivetweb1 libgrpc++1.51 libgrpc29 libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 libprotobuf32 libre2-9 libsctp1 libssl3 libusrsctp2 libcurl4 \
      libgoogle-glog0v6 \
 && rm -rf /var/lib/apt/lists/*
# A numeric uid, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin smig
COPY --from=build /src/build/dataplane/daemon/smig-dataplane /usr/local/bin/
COPY --from=build /src/build/services/proximity/smig-proximity /usr/local/bin/
COPY --from=build /src/build/services/decision/smig-decision /usr/local/bin/
COPY --from=build /src/build/services/migrator/smig-migrator /usr/local/bin/
COPY --from=build /src/build/tools/smigctl/smigctl /usr/local/bin/
USER 10001:10001
# One image, several programs: the Kubernetes manifests name the one to run.
CMD ["smigctl", "--help"]
