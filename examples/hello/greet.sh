#!/bin/sh
echo "$GREETING"
cat /app/hello.txt
