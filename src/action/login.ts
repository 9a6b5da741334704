// Registry credentials in the Action: the `registry`/`username`/`password` inputs (login-action's, in memory only:
// nothing is written to the runner's docker config), then what an earlier docker/login-action step wrote to the
// docker config (DockerCredentials: auths, credHelpers, credsStore, DOCKER_AUTH_CONFIG, podman's auth.json), then,
// for ghcr.io, the workflow's github-token as its actor (what GitHub's docs have login-action do by hand).
import { authKey, type Credential, type CredentialSource, DockerCredentials } from '../registry/credentials.js';

export interface LoginInputs {
  registry?: string;
  username?: string;
  password?: string;
  githubToken?: string;
  actor?: string;
}

export class ActionCredentials implements CredentialSource {
  private readonly explicit?: { key: string; credential: Credential };
  private readonly docker: CredentialSource;

  constructor(
    private readonly inputs: LoginInputs,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.docker = new DockerCredentials(env);
    if (inputs.username !== undefined || inputs.password !== undefined) {
      if (!inputs.username || !inputs.password)
        throw new Error('inputs username and password go together: give both, or neither to use the docker config');
      this.explicit = {
        key: authKey(inputs.registry ?? 'docker.io'),
        credential: { username: inputs.username, password: inputs.password },
      };
    }
  }

  /** The registry the inputs log in to, if any. */
  get loginRegistry(): string | undefined {
    return this.explicit ? (this.inputs.registry ?? 'docker.io') : undefined;
  }

  async get(registry: string): Promise<Credential | undefined> {
    if (this.explicit && authKey(registry) === this.explicit.key) return this.explicit.credential;
    const c = await this.docker.get(registry);
    if (c) return c;
    if (registry === 'ghcr.io' && this.inputs.githubToken)
      return { username: this.inputs.actor || 'github-actions', password: this.inputs.githubToken };
    return undefined;
  }
}
