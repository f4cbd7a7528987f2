# Re-publishes the join tokens from a live manager (after a rotation, or if missing).
# In: TOKEN_PREFIX.
publish_tokens
echo "published=true"
