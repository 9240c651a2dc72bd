using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Compute;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Router kernels on an ILGPU accelerator: softmax and sigmoid over <c>[T, E]</c> scores (as
/// <c>HostScoreFunctions</c>), token-choice top-k with ties toward the lower expert id, optionally node-limited
/// (as the router's <c>TopKExpertChoice</c>), and the softmax's and top-k's backward passes; one thread per token
/// over rows staged in shared memory, 32 tokens a group. The softmax and the top-k run as one launch
/// (<see cref="SoftmaxTopK"/>), and so do their backward passes (<see cref="TopScoresSoftmaxBackward"/>).
/// </summary>
/// <remarks>
/// Tolerance: on ILGPU's CPU accelerator every kernel is bitwise equal to the host (the kernels run .NET's
/// <c>MathF.Exp</c>). On CUDA, <c>exp</c> is ILGPU.Algorithms' <c>XMath.Exp</c>, so softmax/sigmoid scores may
/// differ from the host by a few ulp (relative error well under 1e-6); everything else is IEEE (max, compare,
/// <c>div.rn.f32</c>, adds without multiplies to fuse), so top-k is bitwise equal to the host given the same
/// scores.
/// </remarks>
internal sealed class IlgpuRouterKernels
{
    private readonly IlgpuTensorAllocator _allocator;
    private readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> _softmax;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>> _sigmoid;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<float>,
        int,
        RouterKernelBodies.TopKChoice,
        ArrayView<float>,
        ArrayView<long>
    > _topK;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        int,
        RouterKernelBodies.TopKChoice,
        ArrayView<float>,
        ArrayView<long>
    > _softmaxTopK;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<float>,
        ArrayView<float>,
        int,
        int
    > _softmaxBackward;
    private readonly Action<
        KernelConfig,
        ArrayView<float>,
        ArrayView<long>,
        ArrayView<float>,
        int,
        RouterKernelBodies.TopKChoice,
        ArrayView<float>
    > _topScoresBackward,
        _topScoresSoftmaxBackward;

    /// <summary>Tokens per group of the tiled kernels: a warp, one thread per token.</summary>
    private const int TileRows = 32;

    /// <summary>Compiles the kernels on <paramref name="allocator"/>'s accelerator.</summary>
    public IlgpuRouterKernels(IlgpuTensorAllocator allocator)
    {
        _allocator = allocator ?? throw new ArgumentNullException(nameof(allocator));
        Accelerator acc = allocator.Accelerator;
        _softmax = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(RouterKernelBodies.SoftmaxTiles);
        _sigmoid = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(
            RouterKernelBodies.Sigmoid
        );
        _topK = acc.LoadStreamKernel<
            ArrayView<float>,
            ArrayView<float>,
            int,
            RouterKernelBodies.TopKChoice,
            ArrayView<float>,
            ArrayView<long>
        >(RouterKernelBodies.TopKTiles);
        _softmaxTopK = acc.LoadStreamKernel<
            ArrayView<float>,
            ArrayView<float>,
            ArrayView<float>,
            int,
            RouterKernelBodies.TopKChoice,
            ArrayView<float>,
            ArrayView<long>
        >(RouterKernelBodies.SoftmaxTopKTiles);
        _softmaxBackward = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(
            RouterKernelBodies.SoftmaxBackwardTiles
        );
        _topScoresBackward = LoadBackward(acc, RouterKernelBodies.TopScoresBackwardTiles);
        _topScoresSoftmaxBackward = LoadBackward(acc, RouterKernelBodies.TopScoresSoftmaxBackwardTiles);

        static Action<
            KernelConfig,
            ArrayView<float>,
            ArrayView<long>,
            ArrayView<float>,
            int,
            RouterKernelBodies.TopKChoice,
            ArrayView<float>
        > LoadBackward(
            Accelerator acc,
            Action<
                ArrayView<float>,
                ArrayView<long>,
                ArrayView<float>,
                int,
                RouterKernelBodies.TopKChoice,
                ArrayView<float>
            > body
        ) => acc.LoadStreamKernel(body);
    }

    /// <summary>
    /// The launch of a tiled router kernel over <paramref name="rows"/> tokens that keeps
    /// <paramref name="wordsPerRow"/> float32 words of shared memory per token: 32 tokens a group (fewer when the
    /// tile would pass the 48 KiB a group may always have, or on ILGPU's CPU accelerator, whose groups hold 16), so
    /// a token's row moves through one coalesced pass.
    /// </summary>
    /// <exception cref="NotSupportedException">One token's words alone pass the limit (E in the thousands).</exception>
    private KernelConfig Tiles(int rows, int wordsPerRow)
    {
        Accelerator acc = _allocator.Accelerator;
        int limit = Math.Min(acc.MaxSharedMemoryPerGroup, 48 * 1024) / sizeof(float);
        int perGroup = Math.Min(Math.Min(TileRows, acc.MaxNumThreadsPerGroup), limit / wordsPerRow);
        if (perGroup < 1)
        {
            throw new NotSupportedException(
                $"a router row of {wordsPerRow} shared words passes the {limit}-word limit of one group"
            );
        }
        return new KernelConfig(
            (rows + perGroup - 1) / perGroup,
            perGroup,
            SharedMemoryConfig.RequestDynamic<float>(perGroup * wordsPerRow)
        );
    }

    /// <summary>Row-wise softmax.</summary>
    /// <param name="logits">z: [T, E] float32 device tensor.</param>
    /// <param name="scores">Output: [T, E] (may alias <paramref name="logits"/>).</param>
    public void Softmax(Tensor logits, Tensor scores)
    {
        int n = DeviceViews.SameCount(logits, scores, nameof(scores));
        int columns = logits.RowLength;
        if (n == 0 || columns == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        int rows = n / columns;
        _softmax(
            Tiles(rows, RouterKernelBodies.Pitch(columns)),
            DeviceViews.Floats(acc, logits, nameof(logits)),
            DeviceViews.Floats(acc, scores, nameof(scores)),
            rows,
            columns
        );
    }

    /// <summary>Element-wise sigmoid.</summary>
    /// <param name="logits">z: any shape, float32.</param>
    /// <param name="scores">Output, same element count (may alias).</param>
    public void Sigmoid(Tensor logits, Tensor scores)
    {
        int n = DeviceViews.SameCount(logits, scores, nameof(scores));
        if (n == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        _sigmoid(n, DeviceViews.Floats(acc, logits, nameof(logits)), DeviceViews.Floats(acc, scores, nameof(scores)));
    }

    /// <summary>
    /// Token-choice top-k: per token, the K experts with the largest <c>scores + expertBias</c> (ties toward the lower
    /// id, NaN last) among the experts of the <paramref name="numLimitedGroups"/> best of
    /// <paramref name="numExpertGroups"/>
    /// groups (a group's score is the sum of its two best biased scores; 0 groups: every expert), ids ascending; top
    /// scores are the chosen unbiased scores, divided by their sum +
    /// <paramref name="normEpsilon"/> when <paramref name="routeNorm"/>, times <paramref name="routeScale"/>.
    /// </summary>
    /// <param name="scores">[T, E] float32.</param>
    /// <param name="expertBias">[E] float32 bias for choosing only, or null.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    /// <param name="routeNorm">Normalize the chosen scores to sum to one.</param>
    /// <param name="normEpsilon">Added to the sum when normalizing.</param>
    /// <param name="routeScale">Multiplies every top score.</param>
    /// <param name="numExpertGroups">G for node-limited routing, or 0.</param>
    /// <param name="numLimitedGroups">Groups kept per token when G &gt; 0.</param>
    /// <param name="zeroDiscardedGroups">Experts of the groups not kept compete with choice score +0 instead of being
    /// left out.</param>
    /// <exception cref="ArgumentException">Shapes disagree, K is not in [1, E], the groups are invalid, or a tensor is
    /// not on this device.</exception>
    public void TopK(
        Tensor scores,
        Tensor? expertBias,
        Tensor topScores,
        Tensor expertIds,
        bool routeNorm = false,
        float normEpsilon = 1e-20f,
        float routeScale = 1f,
        int numExpertGroups = 0,
        int numLimitedGroups = 0,
        bool zeroDiscardedGroups = false
    ) =>
        TopK(
            scores,
            expertBias,
            new TopKOptions
            {
                RouteNorm = routeNorm,
                NormEpsilon = normEpsilon,
                RouteScale = routeScale,
                NumExpertGroups = numExpertGroups,
                NumLimitedGroups = numLimitedGroups,
                ZeroDiscardedGroups = zeroDiscardedGroups,
            },
            topScores,
            expertIds
        );

    /// <summary><see cref="TopK(Tensor, Tensor?, Tensor, Tensor, bool, float, float, int, int, bool)"/> with the
    /// choice's settings as one <see cref="TopKOptions"/>.</summary>
    /// <param name="scores">[T, E] float32.</param>
    /// <param name="expertBias">[E] float32 bias for choosing only, or null.</param>
    /// <param name="options">Groups, normalisation and scale.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    /// <exception cref="ArgumentException">As the other overload.</exception>
    public void TopK(Tensor scores, Tensor? expertBias, TopKOptions options, Tensor topScores, Tensor expertIds)
    {
        RouterKernelBodies.TopKChoice c = Choice(scores, expertBias, options, topScores, expertIds);
        int tokens = scores.Rows;
        if (tokens == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        ArrayView<float> s = DeviceViews.Floats(acc, scores, nameof(scores));
        _topK(
            Tiles(tokens, c.WordsPerToken),
            s,
            expertBias is null ? s : DeviceViews.Floats(acc, expertBias, nameof(expertBias)),
            tokens,
            c,
            DeviceViews.Floats(acc, topScores, nameof(topScores)),
            DeviceViews.Longs(acc, expertIds, nameof(expertIds))
        );
    }

    /// <summary>
    /// <see cref="Softmax"/> of <paramref name="logits"/> into <paramref name="scores"/>, then
    /// <see cref="TopK(Tensor, Tensor?, TopKOptions, Tensor, Tensor)"/> of the scores, in one launch (the same bits as
    /// the two calls).
    /// </summary>
    /// <param name="logits">z: [T, E] float32.</param>
    /// <param name="scores">Output softmax: [T, E] (may alias <paramref name="logits"/>).</param>
    /// <param name="expertBias">[E] float32 bias for choosing only, or null.</param>
    /// <param name="options">Groups, normalisation and scale.</param>
    /// <param name="topScores">Output [T, K] float32.</param>
    /// <param name="expertIds">Output [T, K] int64.</param>
    /// <exception cref="ArgumentException">As <see cref="TopK(Tensor, Tensor?, TopKOptions, Tensor, Tensor)"/>, or the
    /// logits and scores differ in size.</exception>
    public void SoftmaxTopK(
        Tensor logits,
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds
    )
    {
        DeviceViews.SameCount(logits, scores, nameof(scores));
        RouterKernelBodies.TopKChoice c = Choice(scores, expertBias, options, topScores, expertIds);
        int tokens = scores.Rows;
        if (tokens == 0 || c.Experts == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        ArrayView<float> s = DeviceViews.Floats(acc, scores, nameof(scores));
        _softmaxTopK(
            Tiles(tokens, c.WordsPerToken),
            DeviceViews.Floats(acc, logits, nameof(logits)),
            s,
            expertBias is null ? s : DeviceViews.Floats(acc, expertBias, nameof(expertBias)),
            tokens,
            c,
            DeviceViews.Floats(acc, topScores, nameof(topScores)),
            DeviceViews.Longs(acc, expertIds, nameof(expertIds))
        );
    }

    /// <summary>Checks the top-k's shapes and options and packs them for the kernels.</summary>
    private static RouterKernelBodies.TopKChoice Choice(
        Tensor scores,
        Tensor? expertBias,
        TopKOptions options,
        Tensor topScores,
        Tensor expertIds
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        int numExpertGroups = options.NumExpertGroups,
            numLimitedGroups = options.NumLimitedGroups;
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(topScores);
        ArgumentNullException.ThrowIfNull(expertIds);
        int tokens = scores.Rows,
            experts = scores.RowLength,
            k = topScores.RowLength;
        if (topScores.Rows != tokens || expertIds.Rows != tokens || expertIds.RowLength != k)
        {
            throw new ArgumentException(
                $"topScores {topScores.ShapeString} and expertIds {expertIds.ShapeString} "
                    + $"must both be [{tokens}, K]",
                nameof(expertIds)
            );
        }
        if (tokens > 0 && (k < 1 || k > experts))
            throw new ArgumentException($"K = {k} must be in [1, {experts}]", nameof(topScores));
        if (expertBias is not null && expertBias.ElementCount != experts)
        {
            throw new ArgumentException(
                $"expertBias has {expertBias.ElementCount} elements but E = {experts}",
                nameof(expertBias)
            );
        }
        if (
            numExpertGroups > 0
            && (
                experts % numExpertGroups != 0
                || experts / numExpertGroups < 2
                || numLimitedGroups < 1
                || numLimitedGroups > numExpertGroups
                || numLimitedGroups * (experts / numExpertGroups) < k
            )
        )
        {
            throw new ArgumentException(
                $"node-limited routing needs G = {numExpertGroups} dividing E = {experts} into groups of at least "
                    + $"two and 1 ≤ {numLimitedGroups} ≤ G groups holding at least K = {k} experts",
                nameof(numExpertGroups)
            );
        }
        return new RouterKernelBodies.TopKChoice
        {
            Experts = experts,
            K = k,
            Groups = Math.Max(numExpertGroups, 0),
            LimitedGroups = numLimitedGroups,
            ZeroDiscarded = options.ZeroDiscardedGroups ? 1 : 0,
            HasBias = expertBias is null ? 0 : 1,
            RouteNorm = options.RouteNorm ? 1 : 0,
            NormEpsilon = options.NormEpsilon,
            RouteScale = options.RouteScale,
        };
    }

    /// <summary>Softmax backward per row, <c>dz = s ⊙ (ds − Σ s·ds)</c> (the sum in ascending column order, as the
    /// host's).</summary>
    /// <param name="scores">s: [T, E] float32, the forward's softmax.</param>
    /// <param name="gradScores">ds: [T, E].</param>
    /// <param name="gradLogits">Output dz: [T, E] (may alias either input).</param>
    public void SoftmaxBackward(Tensor scores, Tensor gradScores, Tensor gradLogits)
    {
        int n = DeviceViews.SameCount(scores, gradScores, nameof(gradScores));
        DeviceViews.SameCount(scores, gradLogits, nameof(gradLogits));
        int columns = scores.RowLength;
        if (n == 0 || columns == 0)
            return;
        Accelerator acc = _allocator.Accelerator;
        int rows = n / columns;
        _softmaxBackward(
            Tiles(rows, 2 * RouterKernelBodies.Pitch(columns)),
            DeviceViews.Floats(acc, scores, nameof(scores)),
            DeviceViews.Floats(acc, gradScores, nameof(gradScores)),
            DeviceViews.Floats(acc, gradLogits, nameof(gradLogits)),
            rows,
            columns
        );
    }

    /// <summary>The top-score backward: <c>gradScores[t]</c> zero except at the chosen experts (see
    /// <see cref="RouterKernelBodies.TopScoresBackwardTiles"/>).</summary>
    /// <param name="scores">[T, E] float32, the unbiased scores of the forward.</param>
    /// <param name="expertIds">[T, K] int64, the forward's ids.</param>
    /// <param name="gradTopScores">[T, K] float32.</param>
    /// <param name="routeNorm">Whether the forward normalized the chosen scores.</param>
    /// <param name="normEpsilon">Added to the sum when normalizing.</param>
    /// <param name="routeScale">Multiplied every top score.</param>
    /// <param name="gradScores">Output [T, E].</param>
    public void TopScoresBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        bool routeNorm,
        float normEpsilon,
        float routeScale,
        Tensor gradScores
    ) =>
        LaunchBackward(
            _topScoresBackward,
            scores,
            expertIds,
            gradTopScores,
            routeNorm,
            normEpsilon,
            routeScale,
            gradScores
        );

    /// <summary>
    /// <see cref="TopScoresBackward"/> then <see cref="SoftmaxBackward"/> in one launch: the logits' gradient of a
    /// softmax router from its top scores' (the same bits as the two calls; the score gradients stay in shared
    /// memory).
    /// </summary>
    /// <param name="scores">[T, E] float32, the forward's softmax.</param>
    /// <param name="expertIds">[T, K] int64, the forward's ids.</param>
    /// <param name="gradTopScores">[T, K] float32.</param>
    /// <param name="routeNorm">Whether the forward normalized the chosen scores.</param>
    /// <param name="normEpsilon">Added to the sum when normalizing.</param>
    /// <param name="routeScale">Multiplied every top score.</param>
    /// <param name="gradLogits">Output [T, E] (may alias <paramref name="scores"/>).</param>
    public void TopScoresSoftmaxBackward(
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        bool routeNorm,
        float normEpsilon,
        float routeScale,
        Tensor gradLogits
    ) =>
        LaunchBackward(
            _topScoresSoftmaxBackward,
            scores,
            expertIds,
            gradTopScores,
            routeNorm,
            normEpsilon,
            routeScale,
            gradLogits
        );

    private void LaunchBackward(
        Action<
            KernelConfig,
            ArrayView<float>,
            ArrayView<long>,
            ArrayView<float>,
            int,
            RouterKernelBodies.TopKChoice,
            ArrayView<float>
        > kernel,
        Tensor scores,
        Tensor expertIds,
        Tensor gradTopScores,
        bool routeNorm,
        float normEpsilon,
        float routeScale,
        Tensor output
    )
    {
        DeviceViews.SameCount(scores, output, nameof(output));
        DeviceViews.SameCount(expertIds, gradTopScores, nameof(gradTopScores));
        int rows = scores.Rows,
            experts = scores.RowLength;
        if (rows == 0 || scores.ElementCount == 0)
            return;
        var c = new RouterKernelBodies.TopKChoice
        {
            Experts = experts,
            K = expertIds.RowLength,
            RouteNorm = routeNorm ? 1 : 0,
            NormEpsilon = normEpsilon,
            RouteScale = routeScale,
        };
        Accelerator acc = _allocator.Accelerator;
        kernel(
            Tiles(rows, 2 * RouterKernelBodies.Pitch(experts)),
            DeviceViews.Floats(acc, scores, nameof(scores)),
            DeviceViews.Longs(acc, expertIds, nameof(expertIds)),
            DeviceViews.Floats(acc, gradTopScores, nameof(gradTopScores)),
            rows,
            c,
            DeviceViews.Floats(acc, output, nameof(output))
        );
    }
}
