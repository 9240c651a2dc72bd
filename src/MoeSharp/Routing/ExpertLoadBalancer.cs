using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>
/// Auxiliary-loss-free load balancing (DeepSeek-V3, torchtitan): counts tokens per expert over steps and
/// nudges <see cref="ExpertBias"/> toward under-used experts. The bias only affects which experts are
/// chosen, never the routing weights.
/// </summary>
public sealed class ExpertLoadBalancer
{
    /// <summary>Creates a balancer with a zero bias and zero counts.</summary>
    /// <param name="numExperts">E, the experts whose load is balanced.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numExperts"/> is not positive.</exception>
    public ExpertLoadBalancer(int numExperts)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numExperts);
        ExpertBias = Tensor.Zeros(DType.Float32, numExperts);
        TokensPerExpert = Tensor.Zeros(DType.Int64, numExperts);
    }

    /// <summary>The bias added to the scores for choosing: [E] float32 (pass to the router's forward).</summary>
    public Tensor ExpertBias { get; }

    /// <summary>Tokens per expert accumulated on this rank since the last update: [E] int64.</summary>
    public Tensor TokensPerExpert { get; }

    /// <summary>Adds one forward pass's counts to the accumulator.</summary>
    /// <param name="tokensPerExpert">[E] int64, e.g. <see cref="RouterOutput.TokensPerExpert"/>.</param>
    /// <exception cref="ArgumentException">Wrong shape or dtype.</exception>
    public void Accumulate(Tensor tokensPerExpert)
    {
        ArgumentNullException.ThrowIfNull(tokensPerExpert);
        int e = ExpertBias.ElementCount;
        if (tokensPerExpert.DType != DType.Int64 || tokensPerExpert.ElementCount != e)
        {
            throw new ArgumentException(
                $"tokensPerExpert must be Int64 [{e}] but is {tokensPerExpert}",
                nameof(tokensPerExpert)
            );
        }
        Span<long> acc = TokensPerExpert.AsSpan<long>();
        ReadOnlySpan<long> add = tokensPerExpert.AsSpan<long>();
        for (int i = 0; i < e; i++)
            acc[i] += add[i];
    }

    /// <summary>
    /// Collective when <paramref name="group"/> is given: sums the accumulated counts over the group
    /// (every rank of the data/expert-parallel group must call it), then applies
    /// <see cref="UpdateExpertBias(float, ReadOnlySpan{long})"/>.
    /// </summary>
    /// <param name="coeff">The load-balance coefficient (step size of the bias).</param>
    /// <param name="group">Ranks whose counts are summed, or null for this rank's counts alone.</param>
    public void UpdateExpertBias(float coeff, IProcessGroup? group = null)
    {
        var summed = TokensPerExpert.AsSpan<long>().ToArray();
        group?.AllReduceSum(summed.AsSpan());
        UpdateExpertBias(coeff, summed);
    }

    /// <summary>
    /// torchtitan's rule on counts already summed over the ranks:
    /// <c>delta_e = coeff · sign(mean − tokens_e)</c>, centered (<c>delta −= mean(delta)</c>, which
    /// leaves every choice unchanged and keeps the bias from drifting), <c>bias += delta</c>; then the
    /// local accumulator is reset to zero.
    /// </summary>
    /// <param name="coeff">The load-balance coefficient.</param>
    /// <param name="summedTokensPerExpert">[E] tokens per expert summed over the group.</param>
    /// <exception cref="ArgumentException">Wrong length or a non-finite coefficient.</exception>
    public void UpdateExpertBias(float coeff, ReadOnlySpan<long> summedTokensPerExpert)
    {
        int e = ExpertBias.ElementCount;
        if (summedTokensPerExpert.Length != e)
        {
            throw new ArgumentException(
                $"summedTokensPerExpert has {summedTokensPerExpert.Length} entries but there are {e} experts",
                nameof(summedTokensPerExpert)
            );
        }
        if (!float.IsFinite(coeff))
        {
            throw new ArgumentOutOfRangeException(nameof(coeff), coeff, "the load-balance coefficient must be finite");
        }

        // Counts are compared in double: exact for any realistic count, so the signs are exact.
        double mean = 0;
        for (int i = 0; i < e; i++)
            mean += summedTokensPerExpert[i];
        mean /= e;
        Span<float> delta = e <= 1024 ? stackalloc float[e] : new float[e];
        float deltaMean = 0f;
        for (int i = 0; i < e; i++)
        {
            delta[i] = coeff * Math.Sign(mean - summedTokensPerExpert[i]);
            deltaMean += delta[i];
        }
        deltaMean /= e;
        Span<float> bias = ExpertBias.AsSpan<float>();
        for (int i = 0; i < e; i++)
            bias[i] += delta[i] - deltaMean;
        TokensPerExpert.AsSpan<long>().Clear();
    }
}
