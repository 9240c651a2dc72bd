using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>
/// What <see cref="TokenChoiceTopKRouter.Forward"/> returns; also the context its backward needs.
/// </summary>
/// <param name="TopScores">Routing weights of the chosen experts: [T, K] float32, in the order of
/// <paramref name="ExpertIds"/>.</param>
/// <param name="ExpertIds">Chosen expert ids: [T, K] int64, ascending per token.</param>
/// <param name="TokensPerExpert">Tokens routed to each expert: [E] int64, on the host or on the router's device
/// (then <see cref="ExpertCounts"/>, copied to the host when <see cref="TokensPerExpert"/> is first read).</param>
/// <param name="Scores">Unbiased scores <c>score_func(x · gateᵀ)</c>: [T, E] float32 (saved for backward).</param>
public sealed record RouterOutput(Tensor TopScores, Tensor ExpertIds, Tensor TokensPerExpert, Tensor Scores)
{
    private CountsOnHost _counts = new(TokensPerExpert ?? throw new ArgumentNullException(nameof(TokensPerExpert)));

    /// <summary>
    /// Tokens routed to each expert: [E] int64, a host tensor on every backend. On a device the router leaves the
    /// counts there (<see cref="ExpertCounts"/>), so that routing never waits for the device; the first read copies
    /// them to the host (one small copy that waits for the router's kernels) and later reads return that copy.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The counts are on a device, were not read before, and their storage has gone back to the allocator
    /// (<see cref="Layer.MoeLayer"/> returns the routing of a forward at its next forward or when disposed): read
    /// them before that.
    /// </exception>
    public Tensor TokensPerExpert
    {
        get => _counts.Read();
        init => _counts = new CountsOnHost(value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>
    /// The counts as the router wrote them: [E] int64 on the router's device (the host tensor
    /// <see cref="TokensPerExpert"/> itself on the host). Reading it never waits; on a device it is valid as long as
    /// the routing's other tensors.
    /// </summary>
    public Tensor ExpertCounts => _counts.Source;

    /// <summary>
    /// Marks device counts as gone back to their allocator: <see cref="TokensPerExpert"/> then returns the host copy
    /// if it was read before, and throws otherwise (never a read of recycled storage). Host counts stay readable.
    /// </summary>
    internal void ReleaseCounts() => _counts.Release();

    /// <summary>
    /// The counts and their host copy, shared by the copies <c>with</c> makes (one storage, one lifetime); two are
    /// equal when they hold the same tensor, as the record's other members compare.
    /// </summary>
    private sealed class CountsOnHost(Tensor source)
    {
        private Tensor? _host = source.IsOnHost ? source : null;
        private bool _released;

        public Tensor Source { get; } = source;

        public Tensor Read()
        {
            if (_host is not null)
                return _host;
            if (_released)
            {
                throw new InvalidOperationException(
                    $"the routing's tokens per expert were on {Source.Device} and went back to the allocator with "
                        + "the forward's other working tensors before they were read: read TokensPerExpert before "
                        + "the layer's next forward (or its Dispose)"
                );
            }
            _host = Source.ToHost();
            return _host;
        }

        public void Release() => _released = true;

        public override bool Equals(object? obj) => obj is CountsOnHost other && ReferenceEquals(other.Source, Source);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Source);
    }
}
