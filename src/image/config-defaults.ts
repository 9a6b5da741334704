// Values the builder puts into image configs when nothing else says otherwise.

/** The PATH of an image that sets none (BuildKit gives it to scratch images and RUN steps on Linux). */
export const defaultPathEnv = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
