#!/bin/sh
echo "$1 from a Python frontend"
