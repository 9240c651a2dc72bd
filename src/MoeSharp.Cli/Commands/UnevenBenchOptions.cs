using MoeSharp.Tensors;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// What <c>moe bench --uneven</c> sweeps: SP sizes 2, 4 and 8 (those that divide the world), and for each SP size the
/// token counts <c>T = base + r</c> with <c>r</c> in {0, 1, SP − 1}, every SP group of the world holding T tokens.
/// </summary>
/// <param name="World">Ranks (= EP size); SP groups are consecutive ranks, so a world of W holds W/SP groups.</param>
/// <param name="BaseTokens">T before the remainder: a multiple of every swept SP size, so r is T mod SP.</param>
/// <param name="Dim">The model dimension D: the length of one token's row.</param>
/// <param name="Experts">The number of routed experts E.</param>
/// <param name="TopK">The number of experts K each token is routed to.</param>
/// <param name="RowType">dtype of the token rows.</param>
/// <param name="SpSizes">The swept SP sizes, ascending.</param>
internal sealed record UnevenBenchOptions(
    int World,
    int BaseTokens,
    int Dim,
    int Experts,
    int TopK,
    DType RowType,
    IReadOnlyList<int> SpSizes
)
{
    /// <summary>World when <c>--world</c> is not given: every SP size of the sweep divides it.</summary>
    public const int DefaultWorld = 8;

    /// <summary>T before the remainder when <c>--tokens</c> is not given (the 4096).</summary>
    public const int DefaultBaseTokens = 4096;

    /// <summary>D when <c>--dim</c> is not given: small enough for 2 cores to sweep in a minute or two.</summary>
    public const int DefaultDim = 256;

    private static readonly int[] SweptSpSizes = [2, 4, 8];

    /// <summary>
    /// The sweep the options ask for on a world of <paramref name="world"/> ranks (<c>--world</c> or
    /// <see cref="DefaultWorld"/> when null); defaults filled in where an option was not given.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// An option that does not fit the sweep; the message names it and its value.
    /// </exception>
    public static UnevenBenchOptions Resolve(BenchSettings s, int? world = null)
    {
        if (s.Preset is not null)
        {
            throw new ArgumentException(
                $"--preset '{s.Preset}' does not apply to --uneven: give --dim, --experts and --top-k"
            );
        }
        if (s.Gemm)
            throw new ArgumentException("--gemm does not apply to --uneven");
        if (s.Profile)
            throw new ArgumentException("--profile does not apply to --uneven");
        int w = world ?? s.WorldOption ?? DefaultWorld;
        int baseTokens = s.TokensOption ?? DefaultBaseTokens;
        int dim = s.DimOption ?? DefaultDim;
        int experts = s.Experts,
            topK = s.TopK;
        DType rowType = BenchShape.ParseRowType(s.DType) ?? DType.Float32;
        if (w < 2)
            throw new ArgumentException($"--world {w} must be at least 2 with --uneven (SP 2 needs two ranks)");
        int[] sps = SweptSpSizes.Where(sp => w % sp == 0).ToArray();
        if (sps.Length == 0)
        {
            throw new ArgumentException($"--world {w} is not divisible by any SP size of the sweep (2, 4, 8)");
        }
        if (baseTokens < 0 || baseTokens % sps[^1] != 0)
        {
            throw new ArgumentException(
                $"--tokens {baseTokens} must be a non-negative multiple of {sps[^1]} (the largest SP size swept) "
                    + "with --uneven, so that r = T mod SP"
            );
        }
        if (dim < 1)
            throw new ArgumentException($"--dim {dim} must be at least 1");
        if (experts < 1 || experts % w != 0)
        {
            throw new ArgumentException($"--experts {experts} must be a positive multiple of the world size {w}");
        }
        if (topK < 1 || topK > experts)
        {
            throw new ArgumentException($"--top-k {topK} must be in [1, --experts {experts}]");
        }
        return new UnevenBenchOptions(w, baseTokens, dim, experts, topK, rowType, sps);
    }

    /// <summary>The remainders swept for <paramref name="sp"/>: 0, 1 and SP − 1 (two values for SP = 2).</summary>
    public static IReadOnlyList<int> Remainders(int sp) => new SortedSet<int> { 0, 1, sp - 1 }.ToArray();

    /// <summary>
    /// Pad tokens <see cref="Dispatch.SpShardingPolicy.PadToMultiple"/> adds to one SP group's T tokens:
    /// <c>ceil(T/SP)·SP − T</c>. Each is routed K times, to expert 0.
    /// </summary>
    public static int PadTokens(int tokens, int sp) => (sp - tokens % sp) % sp;
}
