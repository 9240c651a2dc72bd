using BenchmarkDotNet.Attributes;
using MoeSharp.Quantization;
using MoeSharp.Tensors;

namespace MoeSharp.Benchmarks;

/// <summary>
/// One thread quantising 256 rows of D = 7168 (DeepSeek-V3's hidden size) to FP8 with 128-column scales, and back,
/// beside a plain copy of the same rows' bfloat16 bytes (what the exchange would otherwise move): the cost of
/// <see cref="Fp8RowQuantizer"/> on the host relative to touching the data once.
/// </summary>
[MemoryDiagnoser]
public class Fp8QuantizeBenchmarks
{
    private const int Rows = 256;
    private const int D = 7168;

    private float[] _f32 = [];
    private BFloat16[] _bf16 = [],
        _bf16Copy = [],
        _bf16Back = [];
    private float[] _f32Back = [];
    private Float8E4M3[] _codes = [];
    private float[] _scales = [];

    /// <summary>Random rows; quantised once so the dequantise benchmarks have codes.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(18);
        _f32 = new float[Rows * D];
        for (int i = 0; i < _f32.Length; i++)
            _f32[i] = (float)(random.NextDouble() * 2 - 1);
        _bf16 = _f32.Select(BFloat16.FromSingle).ToArray();
        _bf16Copy = new BFloat16[_bf16.Length];
        _bf16Back = new BFloat16[_bf16.Length];
        _f32Back = new float[_f32.Length];
        _codes = new Float8E4M3[_f32.Length];
        _scales = new float[Rows * Fp8RowQuantizer.ScalesPerRow(D)];
        Fp8RowQuantizer.Quantize(_f32, D, _codes, _scales);
    }

    /// <summary>The peer: copy the bfloat16 rows.</summary>
    [Benchmark(Baseline = true)]
    public void CopyBFloat16() => _bf16.AsSpan().CopyTo(_bf16Copy);

    /// <summary>float32 rows to codes and scales.</summary>
    [Benchmark]
    public void QuantizeFloat32() => Fp8RowQuantizer.Quantize(_f32, D, _codes, _scales);

    /// <summary>bfloat16 rows to codes and scales.</summary>
    [Benchmark]
    public void QuantizeBFloat16() => Fp8RowQuantizer.Quantize(_bf16, D, _codes, _scales);

    /// <summary>Codes and scales to float32 rows.</summary>
    [Benchmark]
    public void DequantizeFloat32() => Fp8RowQuantizer.Dequantize(_codes, _scales, D, _f32Back);

    /// <summary>Codes and scales to bfloat16 rows.</summary>
    [Benchmark]
    public void DequantizeBFloat16() => Fp8RowQuantizer.Dequantize(_codes, _scales, D, _bf16Back);
}
