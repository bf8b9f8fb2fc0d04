state_file=$1
cat > "$state_file.nexus-tmp" && mv -f "$state_file.nexus-tmp" "$state_file"
