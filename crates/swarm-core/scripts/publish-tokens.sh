# Re-publishes the join tokens from a live manager (after a rotation, or if missing).
# In: TOKEN_PREFIX, TOKEN_KMS_KEY (empty: aws/ssm).
publish_tokens
echo "published=true"
