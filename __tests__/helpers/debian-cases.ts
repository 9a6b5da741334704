// The differential cases on a Debian base (apt-get installs, users, capabilities, a C program compiled with tcc),
// compared with docker build by differential-debian.test.ts, and again with hoist in a container without
// privileges by unprivileged.test.ts.
import type { Case } from './differential.js';

// apt leaves logs, caches and lists that differ from run to run; every install cleans them in the same RUN.
export const clean =
  'rm -rf /var/lib/apt/lists/* /var/log/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache';

export const debianCases: Case[] = [
  {
    name: "apt-get install of packages from Debian's mirror; a file capability set by setcap survives into the layer",
    dockerfile: `FROM {{BASE}}
RUN apt-get update && apt-get install -y --no-install-recommends hello libcap2-bin && cp /bin/true /usr/local/bin/bind-low && setcap cap_net_bind_service=+ep /usr/local/bin/bind-low && ${clean}
CMD ["hello"]
`,
    runs: 'Hello, world!\n',
  },
  {
    name: 'useradd, then USER by name: HOME, ownership, WORKDIR under it',
    dockerfile: `FROM {{BASE}}
RUN useradd -m -u 1500 -s /bin/bash builder && ${clean}
USER builder
WORKDIR /home/builder/app
RUN echo "$HOME $(id -un) $(pwd)" > where && touch owned
`,
  },
  {
    name: 'deleting documentation and locales of the base (many whiteouts)',
    dockerfile: `FROM {{BASE}}
RUN rm -rf /usr/share/doc /usr/share/man /usr/share/locale && mkdir /usr/share/doc
`,
  },
  {
    name: 'multi-stage: C compiled with tcc in one stage, the binary run as a system user in another',
    dockerfile: `FROM {{BASE}} AS build
RUN apt-get update && apt-get install -y --no-install-recommends tcc libc6-dev && ${clean}
WORKDIR /src
COPY hello.c .
RUN tcc -o /hello hello.c && /hello > /built-output
FROM {{BASE}}
COPY --from=build /hello /usr/local/bin/hello
RUN useradd --system --no-create-home runner && ${clean}
USER runner
CMD ["hello"]
`,
    files: {
      'hello.c':
        '#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n  printf("hello from tcc, uid %d\\n", (int)getuid());\n  return 0;\n}\n',
    },
    runs: 'hello from tcc, uid 999\n',
  },
  {
    name: 'merged /usr: WORKDIR, COPY and RUN through the /lib and /bin symlinks land under /usr',
    dockerfile: `FROM {{BASE}}
WORKDIR /lib/hoist-app
COPY a.txt /bin/hoist-a
COPY a.txt ./rel.txt
RUN echo made > /lib/hoist-app/made && pwd > /pwd && readlink -f /bin/hoist-a > /resolved
`,
    files: { 'a.txt': 'a\n' },
  },
  {
    name: 'groupadd and useradd -G: the step runs with the supplementary groups, an explicit group drops them',
    dockerfile: `FROM {{BASE}}
RUN groupadd -g 2000 devs && groupadd -g 2001 ops && useradd -m -u 1600 -G devs,ops dev && ${clean}
USER dev
RUN id > /tmp/id && id -G > /tmp/groups && touch /tmp/mine
USER dev:ops
RUN id > /tmp/id-explicit
`,
  },
  {
    name: "extended attributes: user.* set in a step are not kept in the layer, as BuildKit's differ keeps only security.capability",
    dockerfile: `FROM {{BASE}}
RUN apt-get update && apt-get install -y --no-install-recommends attr && ${clean} && echo data > /noted && setfattr -n user.note -v in-the-step /noted && getfattr --only-values -n user.note /noted > /seen-in-step
`,
  },
  {
    name: 'RUN --mount=type=ssh: the agent of SSH_AUTH_SOCK and one holding a key file answer inside the step',
    dockerfile: `FROM {{BASE}}
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && ${clean}
RUN --mount=type=ssh ssh-add -l | cut -d' ' -f2 > /default-keys && echo "$SSH_AUTH_SOCK" > /sock-env
RUN --mount=type=ssh,id=keys,target=/run/keys.sock,uid=1000,mode=0600 SSH_AUTH_SOCK=/run/keys.sock ssh-add -l | cut -d' ' -f2 > /file-keys && stat -c '%u %a' /run/keys.sock > /keys-sock
`,
    ssh: ['default', 'keys={{WORK}}/file-key'],
    oldBuildkitStubs: ['run/buildkit'],
  },
];
