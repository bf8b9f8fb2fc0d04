PM2_SILENT=true pm2 jlist | node -e "${program:?}" "$1"
