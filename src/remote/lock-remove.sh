state=$1 lock=$2 token=$3
[ -d "$state" ] || { echo @gone; exit 0; }
take_mutex "$state"
if grep -qF -- "$token" "$lock" 2>/dev/null; then
  rm -f "$lock"
  echo @removed
else
  echo @other
fi
