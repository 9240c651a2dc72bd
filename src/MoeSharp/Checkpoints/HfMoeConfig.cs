using System.Globalization;
using System.Text.Json;
using MoeSharp.Layer;
using MoeSharp.Routing;

namespace MoeSharp.Checkpoints;

/// <summary>
/// The MoE part of a Hugging Face <c>config.json</c>, for the families of <see cref="HfMoeFamily"/>: layer shape,
/// routing as the family's <c>transformers</c> modeling code does it, which decoder layers are MoE, and the tensor
/// names of a layer's MoE block (docs/weights.md).
/// </summary>
public sealed class HfMoeConfig
{
    /// <summary>
    /// The most routed experts a config may name (2^20): a thousand times DeepSeek-V3's 256 and as many as the largest
    /// published fine-grained MoE (PEER's 1024²), while keeping the per-expert bookkeeping of a layer (tensor names,
    /// token counts) small.
    /// </summary>
    public const int MaxExperts = 1 << 20;

    private readonly int[] _mlpOnlyLayers;

    private HfMoeConfig(
        HfMoeFamily family,
        string source,
        int hiddenSize,
        int numLayers,
        MoeLayerArgs args,
        int firstDenseLayers,
        int sparseStep,
        int[] mlpOnlyLayers,
        int[]? weightBlockSize
    )
    {
        Family = family;
        Source = source;
        HiddenSize = hiddenSize;
        NumLayers = numLayers;
        Args = args;
        FirstDenseLayers = firstDenseLayers;
        SparseStep = sparseStep;
        _mlpOnlyLayers = mlpOnlyLayers;
        WeightBlockSize = weightBlockSize;
    }

    /// <summary>The family (from <c>model_type</c>).</summary>
    public HfMoeFamily Family { get; }

    /// <summary>Where the config came from, for messages.</summary>
    public string Source { get; }

    /// <summary><c>hidden_size</c>: D.</summary>
    public int HiddenSize { get; }

    /// <summary><c>num_hidden_layers</c>.</summary>
    public int NumLayers { get; }

    /// <summary>The MoE block's shape and routing (the same for every MoE layer of the model).</summary>
    public MoeLayerArgs Args { get; }

    /// <summary>DeepSeek-V3's <c>first_k_dense_replace</c>: layers below it are dense (0 for other families).</summary>
    public int FirstDenseLayers { get; }

    /// <summary>
    /// Qwen's <c>decoder_sparse_step</c>: layer i is MoE when <c>(i + 1) % step == 0</c> (1 for other families).
    /// </summary>
    public int SparseStep { get; }

    /// <summary>Qwen's <c>mlp_only_layers</c>: dense layers named explicitly.</summary>
    public IReadOnlyList<int> MlpOnlyLayers => _mlpOnlyLayers;

    /// <summary><c>quantization_config.weight_block_size</c> of an FP8 checkpoint ([rows, columns]), or null.</summary>
    public IReadOnlyList<int>? WeightBlockSize { get; }

    /// <summary>Reads <c>config.json</c> of a checkpoint directory.</summary>
    /// <exception cref="FileNotFoundException">There is no config.json.</exception>
    /// <exception cref="InvalidDataException">The config is malformed, of another family, or a key is out of
    /// range.</exception>
    public static HfMoeConfig Read(string directory)
    {
        string path = Path.Combine(directory, "config.json");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{directory}: no config.json", path);
        return Parse(BoundedFile.ReadAllText(path, MaxConfigBytes, "a config.json"), path);
    }

    /// <summary>
    /// The largest <c>config.json</c> read: 16 MiB, thousands of times a real one (a few KB), so a file that is not a
    /// config (a device, a shard) is refused before it is read whole.
    /// </summary>
    private const int MaxConfigBytes = 16 << 20;

    /// <summary>Parses a <c>config.json</c> text; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="InvalidDataException">The config is malformed, of another family, or a key is out of
    /// range.</exception>
    public static HfMoeConfig Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(source);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException(
                    $"{source}: a config must be a JSON object, not {document.RootElement.ValueKind}"
                );
            }
            var c = new Keys(document.RootElement, source);
            string modelType = c.String("model_type");
            HfMoeFamily family = modelType switch
            {
                "qwen2_moe" => HfMoeFamily.Qwen2Moe,
                "qwen3_moe" => HfMoeFamily.Qwen3Moe,
                "mixtral" => HfMoeFamily.Mixtral,
                "deepseek_v3" => HfMoeFamily.DeepseekV3,
                _ => throw new InvalidDataException(
                    $"{source}: model_type '{modelType}' is not a MoE family MoeSharp reads (qwen2_moe, qwen3_moe, mixtral, deepseek_v3)"
                ),
            };
            int d = c.Int("hidden_size");
            int layers = c.Int("num_hidden_layers");
            int k = c.Int("num_experts_per_tok");
            try
            {
                return family switch
                {
                    HfMoeFamily.Qwen2Moe or HfMoeFamily.Qwen3Moe => Qwen(family, c, source, d, layers, k),
                    HfMoeFamily.Mixtral => Mixtral(c, source, d, layers, k),
                    _ => DeepseekV3(c, source, d, layers, k),
                };
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{source}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// Whether decoder layer <paramref name="layer"/> has a MoE block (else a dense MLP), as the family builds it.
    /// </summary>
    public bool IsMoeLayer(int layer) =>
        layer >= 0
        && layer < NumLayers
        && Family switch
        {
            HfMoeFamily.Qwen2Moe or HfMoeFamily.Qwen3Moe => !_mlpOnlyLayers.Contains(layer)
                && (layer + 1) % SparseStep == 0,
            HfMoeFamily.DeepseekV3 => layer >= FirstDenseLayers,
            _ => true,
        };

    /// <summary>The prefix of layer <paramref name="layer"/>'s MoE block, e.g. <c>model.layers.3.mlp.</c>.</summary>
    public string BlockPrefix(int layer) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"model.layers.{layer}.{(Family == HfMoeFamily.Mixtral ? "block_sparse_moe" : "mlp")}."
        );

    /// <summary>The router gate's name: [E, D].</summary>
    public string GateName(int layer) => BlockPrefix(layer) + "gate.weight";

    /// <summary>DeepSeek-V3's <c>e_score_correction_bias</c> [E], or null for families without one.</summary>
    public string? ScoreBiasName(int layer) =>
        Family == HfMoeFamily.DeepseekV3 ? BlockPrefix(layer) + "gate.e_score_correction_bias" : null;

    /// <summary>
    /// Routed expert <paramref name="expert"/>'s gate (w1, [H, D]), up (w3, [H, D]) and down (w2, [D, H]) projections.
    /// </summary>
    public (string Gate, string Up, string Down) ExpertNames(int layer, int expert)
    {
        string e = BlockPrefix(layer) + string.Create(CultureInfo.InvariantCulture, $"experts.{expert}.");
        return Family == HfMoeFamily.Mixtral
            ? (e + "w1.weight", e + "w3.weight", e + "w2.weight")
            : (e + "gate_proj.weight", e + "up_proj.weight", e + "down_proj.weight");
    }

    /// <summary>
    /// The shared expert's projections (Qwen2-MoE <c>shared_expert.</c>, DeepSeek-V3 <c>shared_experts.</c>), or null.
    /// </summary>
    public (string Gate, string Up, string Down)? SharedNames(int layer)
    {
        string? shared = Family switch
        {
            HfMoeFamily.Qwen2Moe => "shared_expert.",
            HfMoeFamily.DeepseekV3 => "shared_experts.",
            _ => null,
        };
        if (shared is null || Args.SharedHidden == 0)
            return null;
        string p = BlockPrefix(layer) + shared;
        return (p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight");
    }

    /// <summary>Qwen2-MoE's <c>shared_expert_gate.weight</c> [1, D], or null.</summary>
    public string? SharedGateName(int layer) =>
        Args.SharedExpertGate ? BlockPrefix(layer) + "shared_expert_gate.weight" : null;

    private static HfMoeConfig Mixtral(Keys c, string source, int d, int layers, int k)
    {
        int hidden = c.Int("intermediate_size"),
            experts = c.Int("num_local_experts");
        HfMoeConfigSizes.CheckLayer(
            source,
            new("hidden_size", d),
            new("intermediate_size", hidden),
            new("num_local_experts", experts),
            new("num_experts_per_tok", k)
        );
        // MixtralSparseMoeBlock: softmax, top-k, always renormalised.
        var args = new MoeLayerArgs(d, hidden, experts, k) { ScoreFunc = ScoreFunction.Softmax, RouteNorm = true };
        return new HfMoeConfig(HfMoeFamily.Mixtral, source, d, layers, args, 0, 1, [], null);
    }

    private static HfMoeConfig Qwen(HfMoeFamily family, Keys c, string source, int d, int layers, int k)
    {
        int hidden = c.Int("moe_intermediate_size"),
            experts = c.Int("num_experts");
        HfMoeConfigSizes.CheckLayer(
            source,
            new("hidden_size", d),
            new("moe_intermediate_size", hidden),
            new("num_experts", experts),
            new("num_experts_per_tok", k)
        );
        // Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock: softmax in float32, top-k, renormalised only with
        // norm_topk_prob.
        int sharedHidden = family == HfMoeFamily.Qwen2Moe ? c.OptionalInt("shared_expert_intermediate_size", 0) : 0;
        HfMoeConfigSizes.CheckShared(source, "'shared_expert_intermediate_size'", sharedHidden, new("hidden_size", d));
        var args = new MoeLayerArgs(d, hidden, experts, k)
        {
            ScoreFunc = ScoreFunction.Softmax,
            RouteNorm = c.OptionalBool("norm_topk_prob", false),
            SharedHidden = sharedHidden,
            SharedExpertGate = sharedHidden > 0,
        };
        int step = c.OptionalInt("decoder_sparse_step", 1);
        if (step < 1)
            throw new InvalidDataException($"{source}: decoder_sparse_step is {step}; it must be at least 1");
        return new HfMoeConfig(family, source, d, layers, args, 0, step, c.OptionalIntArray("mlp_only_layers"), null);
    }

    private static HfMoeConfig DeepseekV3(Keys c, string source, int d, int layers, int k)
    {
        string scoring = c.OptionalString("scoring_func", "sigmoid");
        if (scoring != "sigmoid")
            throw new InvalidDataException($"{source}: scoring_func '{scoring}': DeepSeek-V3 routing is 'sigmoid'");
        int experts = c.Int("n_routed_experts");
        int groups = c.OptionalInt("n_group", 1),
            topkGroups = c.OptionalInt("topk_group", 1);
        int shared = c.OptionalInt("n_shared_experts", 0);
        int hidden = c.Int("moe_intermediate_size");
        // The product first: it names both keys of a Hs that would wrap around.
        int sharedHidden = SharedHidden(source, hidden, shared);
        var expertsKey = new HfMoeConfigSizes.Key("n_routed_experts", experts);
        var topK = new HfMoeConfigSizes.Key("num_experts_per_tok", k);
        HfMoeConfigSizes.CheckLayer(
            source,
            new("hidden_size", d),
            new("moe_intermediate_size", hidden),
            expertsKey,
            topK
        );
        HfMoeConfigSizes.CheckGroups(source, new("n_group", groups), new("topk_group", topkGroups), expertsKey, topK);
        HfMoeConfigSizes.CheckShared(
            source,
            "'moe_intermediate_size' × 'n_shared_experts'",
            sharedHidden,
            new("hidden_size", d)
        );
        // DeepseekV3TopkRouter: sigmoid scores; choose with scores + e_score_correction_bias among the topk_group
        // groups with the best sum of their top-2, the other groups' experts masked to 0.0 (not left out) before the
        // top-k over all experts; weights are the unbiased scores, over their sum + 1e-20 with norm_topk_prob, times
        // routed_scaling_factor. One group is no grouping.
        var args = new MoeLayerArgs(d, hidden, experts, k)
        {
            ScoreFunc = ScoreFunction.Sigmoid,
            RouteNorm = c.OptionalBool("norm_topk_prob", true),
            RouteScale = (float)c.OptionalDouble("routed_scaling_factor", 1.0),
            NumExpertGroups = groups > 1 ? groups : 0,
            NumLimitedGroups = groups > 1 ? topkGroups : 0,
            ZeroDiscardedGroups = groups > 1,
            SharedHidden = sharedHidden,
            LoadBalancing = true,
        };
        _ = new TokenChoiceTopKRouter(
            1,
            experts,
            k,
            args.ScoreFunc,
            args.RouteNorm,
            args.RouteScale,
            args.NumExpertGroups,
            args.NumLimitedGroups
        ); // validates the grouping before any weight is read
        int[]? block = null;
        if (
            c.Root.TryGetProperty("quantization_config", out JsonElement quantization)
            && quantization.ValueKind == JsonValueKind.Object
        )
        {
            var q = new Keys(quantization, source + " quantization_config");
            block = q.OptionalIntArray("weight_block_size");
            if (block.Length != 2 || block[0] < 1 || block[1] < 1)
            {
                throw new InvalidDataException(
                    $"{source}: quantization_config.weight_block_size must be two positive integers"
                );
            }
        }
        return new HfMoeConfig(
            HfMoeFamily.DeepseekV3,
            source,
            d,
            layers,
            args,
            c.OptionalInt("first_k_dense_replace", 0),
            1,
            [],
            block
        );
    }

    /// <summary>
    /// DeepSeek-V3's shared experts run as one MLP of <c>moe_intermediate_size × n_shared_experts</c> hidden units.
    /// Both keys fit an int on their own, but their product need not: unchecked, 65536 × 65536 wraps to 0 and the
    /// shared expert silently vanishes.
    /// </summary>
    private static int SharedHidden(string source, int hidden, int shared)
    {
        long product = (long)hidden * shared;
        if (product > int.MaxValue)
        {
            throw new InvalidDataException(
                $"{source}: 'moe_intermediate_size' ({hidden}) × 'n_shared_experts' ({shared}) is {product}, "
                    + $"more than the {int.MaxValue} hidden units a shared expert can have"
            );
        }
        return (int)product;
    }

    /// <summary>Typed access to config keys with messages naming the file and the key.</summary>
    private sealed class Keys(JsonElement root, string source)
    {
        public JsonElement Root => root;

        public string String(string key) =>
            Get(key) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : throw Bad(key, "a string");

        public string OptionalString(string key, string fallback) => Has(key) ? String(key) : fallback;

        public int Int(string key) =>
            Get(key) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out int i) && i >= 0
                ? i
                : throw Bad(key, "a non-negative integer");

        public int OptionalInt(string key, int fallback) => Has(key) ? Int(key) : fallback;

        public bool OptionalBool(string key, bool fallback) =>
            !Has(key) ? fallback
            : Get(key) is { ValueKind: JsonValueKind.True or JsonValueKind.False } v ? v.GetBoolean()
            : throw Bad(key, "true or false");

        public double OptionalDouble(string key, double fallback) =>
            !Has(key) ? fallback
            : Get(key) is { ValueKind: JsonValueKind.Number } v && double.IsFinite(v.GetDouble()) ? v.GetDouble()
            : throw Bad(key, "a number");

        public int[] OptionalIntArray(string key)
        {
            if (!Has(key))
                return [];
            JsonElement v = Get(key)!.Value;
            if (v.ValueKind != JsonValueKind.Array)
                throw Bad(key, "an array of integers");
            return
            [
                .. v.EnumerateArray()
                    .Select(e =>
                        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i)
                            ? i
                            : throw Bad(key, "an array of integers")
                    ),
            ];
        }

        private bool Has(string key) =>
            root.TryGetProperty(key, out JsonElement v) && v.ValueKind != JsonValueKind.Null;

        private JsonElement? Get(string key) => root.TryGetProperty(key, out JsonElement v) ? v : null;

        private InvalidDataException Bad(string key, string what) =>
            new(
                Has(key)
                    ? $"{source}: '{key}' is {Get(key)!.Value.GetRawText()}, not {what}"
                    : $"{source}: missing key '{key}' ({what})"
            );
    }
}
