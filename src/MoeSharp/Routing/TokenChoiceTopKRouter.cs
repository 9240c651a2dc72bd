using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Routing;

/// <summary>
/// torchtitan's <c>TokenChoiceTopKRouter</c>: each token picks its top-k experts from
/// <c>score_func(x · gateᵀ)</c> (optionally biased for choosing and node-limited), and gets routing
/// weights from the unbiased scores. float32, with a hand-written backward, on any <see cref="ILayerKernels"/> backend.
/// </summary>
/// <remarks>
/// Forward: <c>scores = score_func(x · gateᵀ)</c> ([T, E]); choose the top-k of <c>scores + expert_bias</c>
/// (ties toward the lower id) among the eligible experts (or, with <see cref="ZeroDiscardedGroups"/>, among all experts
/// with the discarded groups' choice scores set to 0); <c>top_scores</c> are the chosen unbiased
/// scores, divided by their sum + 1e-20 when <see cref="RouteNorm"/>, times <see cref="RouteScale"/>.
/// Ids are returned ascending per token. The bias and the choice itself are not differentiable.
/// </remarks>
public sealed class TokenChoiceTopKRouter
{
    private readonly ILayerKernels _kernels;

    /// <summary>Creates a router with a zero gate weight (fill <see cref="GateWeight"/> before use).</summary>
    /// <param name="dim">D, the model dimension.</param>
    /// <param name="numExperts">E, the experts a token chooses among.</param>
    /// <param name="topK">K, experts per token, in <c>[1, E]</c>.</param>
    /// <param name="scoreFunc">Softmax or sigmoid.</param>
    /// <param name="routeNorm">Normalize the chosen scores to sum to one.</param>
    /// <param name="routeScale">Factor applied to the routing weights.</param>
    /// <param name="numExpertGroups">G for node-limited routing (0: off); must divide E with at least two experts per
    /// group.</param>
    /// <param name="numLimitedGroups">Groups that stay eligible per token, in <c>[1, G]</c>, holding at least K
    /// experts.</param>
    /// <param name="kernels">Where the gate lives and the routing runs; the host when null.</param>
    /// <exception cref="ArgumentException">A size is out of range or inconsistent.</exception>
    public TokenChoiceTopKRouter(
        int dim,
        int numExperts,
        int topK,
        ScoreFunction scoreFunc = ScoreFunction.Softmax,
        bool routeNorm = false,
        float routeScale = 1f,
        int numExpertGroups = 0,
        int numLimitedGroups = 0,
        ILayerKernels? kernels = null
    )
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numExperts);
        if (topK < 1 || topK > numExperts)
        {
            throw new ArgumentOutOfRangeException(
                nameof(topK),
                topK,
                $"top-k must be in [1, {numExperts}] (the number of experts)"
            );
        }
        if (!Enum.IsDefined(scoreFunc))
        {
            throw new ArgumentOutOfRangeException(nameof(scoreFunc), scoreFunc, "unknown score function");
        }
        if (!float.IsFinite(routeScale))
        {
            throw new ArgumentOutOfRangeException(nameof(routeScale), routeScale, "route scale must be finite");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(numExpertGroups);
        if (numExpertGroups > 0)
        {
            if (numExperts % numExpertGroups != 0 || numExperts / numExpertGroups < 2)
            {
                throw new ArgumentException(
                    $"num_expert_groups {numExpertGroups} must divide the {numExperts} experts into groups of at "
                        + "least two",
                    nameof(numExpertGroups)
                );
            }
            if (numLimitedGroups < 1 || numLimitedGroups > numExpertGroups)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(numLimitedGroups),
                    numLimitedGroups,
                    $"num_limited_groups must be in [1, {numExpertGroups}] (num_expert_groups)"
                );
            }
            if (numLimitedGroups * (numExperts / numExpertGroups) < topK)
            {
                throw new ArgumentException(
                    $"num_limited_groups {numLimitedGroups} × {numExperts / numExpertGroups} experts per group "
                        + $"leaves fewer than top-k {topK} eligible",
                    nameof(numLimitedGroups)
                );
            }
        }
        else if (numLimitedGroups != 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numLimitedGroups),
                numLimitedGroups,
                "num_limited_groups needs num_expert_groups > 0"
            );
        }

        Options = new TopKOptions
        {
            NumExpertGroups = numExpertGroups,
            NumLimitedGroups = numLimitedGroups,
            RouteNorm = routeNorm,
            RouteScale = routeScale,
        };
        Dim = dim;
        NumExperts = numExperts;
        TopK = topK;
        ScoreFunc = scoreFunc;
        _kernels = kernels ?? new HostLayerKernels();
        GateWeight = _kernels.RentZeros(DType.Float32, numExperts, dim);
    }

    /// <summary>D, the model dimension: the length of a token row and of a gate row.</summary>
    public int Dim { get; }

    /// <summary>E, the number of experts a token chooses among.</summary>
    public int NumExperts { get; }

    /// <summary>K, the experts each token is routed to.</summary>
    public int TopK { get; }

    /// <summary>Softmax or sigmoid.</summary>
    public ScoreFunction ScoreFunc { get; }

    /// <summary>How the top-k chooses and weighs experts (groups, normalisation, scale), as the kernels take
    /// it.</summary>
    public TopKOptions Options { get; private set; }

    /// <summary>Whether the chosen scores are normalized to sum to one.</summary>
    public bool RouteNorm => Options.RouteNorm;

    /// <summary>Factor on the routing weights.</summary>
    public float RouteScale => Options.RouteScale;

    /// <summary>G (0: no node-limited routing).</summary>
    public int NumExpertGroups => Options.NumExpertGroups;

    /// <summary>Groups kept eligible per token when <see cref="NumExpertGroups"/> &gt; 0.</summary>
    public int NumLimitedGroups => Options.NumLimitedGroups;

    /// <summary>
    /// How node-limited routing treats the experts of the groups not kept: false (the default, torchtitan's
    /// <c>TokenChoiceTopKRouter</c>) leaves them out of the choice; true (transformers' <c>DeepseekV3TopkRouter</c>,
    /// <c>masked_fill(~score_mask, 0.0)</c> and a top-k over all experts) lets them compete with the choice score +0.
    /// The two differ only when fewer than K kept experts have a biased score above 0 (a negative bias) or one equals
    /// 0; ties go to the lower id either way. Without groups it has no effect.
    /// </summary>
    public bool ZeroDiscardedGroups
    {
        get => Options.ZeroDiscardedGroups;
        init => Options = Options with { ZeroDiscardedGroups = value };
    }

    /// <summary>The gate (router linear layer, no bias): [E, D] float32, updated in place by optimizers.</summary>
    public Tensor GateWeight { get; }

    /// <summary>Routes the tokens.</summary>
    /// <param name="x">Tokens: [T, D] float32.</param>
    /// <param name="expertBias">Optional load-balancing bias: [E] float32, added to the scores for choosing
    /// only.</param>
    /// <returns>Routing weights, ids (ascending per token), counts per expert and the saved scores, on the kernels'
    /// device: nothing here waits for it (<see cref="RouterOutput.TokensPerExpert"/> reads the counts when
    /// asked).</returns>
    /// <exception cref="ArgumentException">A shape or dtype is wrong.</exception>
    public RouterOutput Forward(Tensor x, Tensor? expertBias = null)
    {
        int tokens = CheckTokens(x, nameof(x));
        if (expertBias is not null)
            CheckShape(expertBias, nameof(expertBias), DType.Float32, NumExperts);

        int e = NumExperts,
            k = TopK;
        using var scope = new TensorScope(_kernels.Allocator);
        Tensor scores = scope.Rent(DType.Float32, tokens, e);
        _kernels.Gemm.MatMulTransposeB(x, GateWeight, scores, new GemmShape(tokens, e, Dim));

        Tensor topScores = scope.Rent(DType.Float32, tokens, k);
        Tensor expertIds = scope.Rent(DType.Int64, tokens, k);
        // The bias is small host state of the load balancer: a backend off the host gets a copy per call (the host
        // device hands the tensor itself back, which stays the caller's).
        Tensor? bias = expertBias is null ? null : _kernels.Dispatch.Device.ToDevice(expertBias);
        if (!ReferenceEquals(bias, expertBias))
            scope.Adopt(bias);
        _kernels.Router.ScoreTopK(ScoreFunc, scores, scores, bias, Options, topScores, expertIds);
        // The counts stay where the ids are: on a device nothing here waits for the kernels (RouterOutput copies them
        // to the host when they are read). On the host they are a plain array that no allocator recycles, readable
        // for as long as the caller holds them.
        bool onHost = _kernels.Dispatch.Device.IsHost;
        Tensor counts = onHost ? Tensor.Zeros(DType.Int64, e) : scope.Adopt(_kernels.RentZeros(DType.Int64, e))!;
        _kernels.Router.CountPerExpert(expertIds, counts);
        return new RouterOutput(
            scope.Keep(topScores),
            scope.Keep(expertIds),
            onHost ? counts : scope.Keep(counts),
            scope.Keep(scores)
        );
    }

    /// <summary>
    /// Backward through <see cref="RouteScale"/>, <see cref="RouteNorm"/>, the gather of the chosen
    /// scores and the score function, to the gate weight and the input.
    /// </summary>
    /// <param name="forward">This router's forward output for <paramref name="x"/>.</param>
    /// <param name="x">The forward input: [T, D] float32.</param>
    /// <param name="gradTopScores">Gradient of the loss w.r.t. <c>TopScores</c>: [T, K] float32.</param>
    /// <param name="accumulateGateGradient">
    /// Optional running gate gradient [E, D] float32: when given, this call's gate gradient continues its
    /// reduction over tokens (one FMA chain per element, ascending token) from these values, in place, and
    /// it is returned. Ranks holding consecutive token blocks that pass it along in order get the bits of
    /// one call on all tokens.
    /// </param>
    /// <returns>Gradients of x ([T, D]) and of the gate weight ([E, D]).</returns>
    /// <exception cref="ArgumentException">A shape or dtype is wrong.</exception>
    public RouterGradients Backward(
        RouterOutput forward,
        Tensor x,
        Tensor gradTopScores,
        Tensor? accumulateGateGradient = null
    )
    {
        ArgumentNullException.ThrowIfNull(forward);
        int tokens = CheckTokens(x, nameof(x));
        int e = NumExperts,
            k = TopK;
        CheckShape(gradTopScores, nameof(gradTopScores), DType.Float32, tokens, k);
        CheckShape(forward.Scores, nameof(forward), DType.Float32, tokens, e);
        CheckShape(forward.ExpertIds, nameof(forward), DType.Int64, tokens, k);

        if (accumulateGateGradient is not null)
            CheckShape(accumulateGateGradient, nameof(accumulateGateGradient), DType.Float32, e, Dim);
        // dL/dscores (zero for unchosen experts), then the score function turns it into dL/dlogits in place.
        using var scope = new TensorScope(_kernels.Allocator);
        Tensor gradLogits = scope.Rent(DType.Float32, tokens, e);
        _kernels.Router.TopScoresScoreBackward(
            ScoreFunc,
            forward.Scores,
            forward.ExpertIds,
            gradTopScores,
            Options,
            gradLogits
        );

        Tensor gradX = scope.Rent(DType.Float32, tokens, Dim);
        Tensor gradGate = accumulateGateGradient ?? scope.Rent(DType.Float32, e, Dim);
        _kernels.Gemm.MatMul(gradLogits, GateWeight, gradX, new GemmShape(tokens, Dim, e));
        _kernels.Gemm.MatMulTransposeA(
            gradLogits,
            x,
            gradGate,
            new GemmShape(e, Dim, tokens),
            accumulate: accumulateGateGradient is not null
        );
        scope.Keep(gradX);
        if (accumulateGateGradient is null)
            scope.Keep(gradGate);
        return new RouterGradients(gradX, gradGate);
    }

    private int CheckTokens(Tensor x, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != Dim)
        {
            throw new ArgumentException($"{name} must be float32 [T, {Dim}] but is {x}", name);
        }
        return x.Dim(0);
    }

    private static void CheckShape(Tensor tensor, string name, DType dtype, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.DType != dtype || !tensor.Shape.SequenceEqual(shape))
        {
            throw new ArgumentException($"{name} must be {dtype} [{string.Join(", ", shape)}] but is {tensor}", name);
        }
    }
}
