#!/bin/sh
cat /app/greeting
