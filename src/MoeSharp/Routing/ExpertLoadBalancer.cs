using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>
/// Auxiliary-loss-free load balancing (DeepSeek-V3, torchtitan): counts tokens per expert over steps and
/// nudges <see cref="ExpertBias"/> toward under-used experts. The bias only affects which experts are
/// chosen, never the routing weights.
/// </summary>
/// <remarks>
/// Routings on a device are counted there (<see cref="Accumulate(RouterOutput)"/>), so a forward pass never waits for
/// the device on the balancer's account: the device total comes to the host once, when
/// <see cref="TokensPerExpert"/> is read (by <see cref="UpdateExpertBias(float, IProcessGroup?)"/>, after the step).
/// </remarks>
public sealed class ExpertLoadBalancer : IDisposable
{
    private readonly ILayerKernels? _kernels;
    private readonly Tensor _hostCounts;

    /// <summary>Device counts not yet added to <see cref="_hostCounts"/>: [E] int64 on the kernels' device, or
    /// null.</summary>
    private Tensor? _deviceCounts;
    private bool _disposed;

    /// <summary>Creates a balancer with a zero bias and zero counts.</summary>
    /// <param name="numExperts">E, the experts whose load is balanced.</param>
    /// <param name="kernels">The router's kernels, which count device routings on their device
    /// (<see cref="Accumulate(RouterOutput)"/>); null when every routing is on the host.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numExperts"/> is not positive.</exception>
    public ExpertLoadBalancer(int numExperts, ILayerKernels? kernels = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numExperts);
        _kernels = kernels;
        ExpertBias = Tensor.Zeros(DType.Float32, numExperts);
        _hostCounts = Tensor.Zeros(DType.Int64, numExperts);
    }

    /// <summary>The bias added to the scores for choosing: [E] float32 (pass to the router's forward).</summary>
    public Tensor ExpertBias { get; }

    /// <summary>
    /// Tokens per expert accumulated on this rank since the last update: [E] int64 on the host. Reading it adds the
    /// counts of device routings in (one small copy that waits for the device's queued work).
    /// </summary>
    public Tensor TokensPerExpert
    {
        get
        {
            if (_deviceCounts is { } pending)
            {
                Tensor host = pending.ToHost();
                _deviceCounts = null;
                _kernels!.Allocator.Return(pending);
                Accumulate(host);
            }
            return _hostCounts;
        }
    }

    /// <summary>Adds one forward pass's counts to the accumulator.</summary>
    /// <param name="tokensPerExpert">[E] int64 on the host, e.g. <see cref="RouterOutput.TokensPerExpert"/>.</param>
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
        Span<long> acc = _hostCounts.AsSpan<long>();
        ReadOnlySpan<long> add = tokensPerExpert.AsSpan<long>();
        for (int i = 0; i < e; i++)
            acc[i] += add[i];
    }

    /// <summary>
    /// Adds one forward pass's routing to the accumulator without waiting for a device: host counts are added at
    /// once; on a device the routing's ids are counted again into a running device total (queued with the
    /// router's kernels), which <see cref="TokensPerExpert"/> brings to the host when read. The routing's tensors
    /// may go back to their allocator as soon as this returns.
    /// </summary>
    /// <param name="routing">A router's output for E experts.</param>
    /// <exception cref="ArgumentException">Its counts are not [E] int64.</exception>
    /// <exception cref="InvalidOperationException">The routing is on a device and the balancer has no
    /// kernels.</exception>
    public void Accumulate(RouterOutput routing)
    {
        ArgumentNullException.ThrowIfNull(routing);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Tensor counts = routing.ExpertCounts;
        if (counts.IsOnHost)
        {
            Accumulate(counts);
            return;
        }
        int e = ExpertBias.ElementCount;
        if (counts.DType != DType.Int64 || counts.ElementCount != e)
        {
            throw new ArgumentException($"the routing's counts must be Int64 [{e}] but are {counts}", nameof(routing));
        }
        ILayerKernels kernels =
            _kernels
            ?? throw new InvalidOperationException(
                $"the routing is on {counts.Device}: create the balancer with that device's kernels"
            );
        _deviceCounts ??= kernels.RentZeros(DType.Int64, e);
        kernels.Router.CountPerExpert(routing.ExpertIds, _deviceCounts);
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
    /// local accumulator (device counts not read yet included) is reset to zero.
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
        DiscardDeviceCounts();
        _hostCounts.AsSpan<long>().Clear();
    }

    /// <summary>Returns the device total to the kernels' allocator (counts not read yet are lost); the bias and the
    /// host counts stay readable.</summary>
    public void Dispose()
    {
        _disposed = true;
        DiscardDeviceCounts();
    }

    private void DiscardDeviceCounts()
    {
        if (_deviceCounts is null)
            return;
        _kernels!.Allocator.Return(_deviceCounts);
        _deviceCounts = null;
    }
}
