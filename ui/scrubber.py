"""A self-contained HTML/JS forward-process scrubber (no server round trip per slider move).

The server sends the clean image x_0 and one noise draw eps once (as 8-bit PNGs) plus the
schedule's alpha_bar table. The browser then computes

    x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * eps

for any t on a canvas, draws the histogram of x_t against the N(0, 1) density and moves
a marker on the alpha_bar / SNR curves. The mixing formula is the same one
``diffusion_core.maths.forward.q_sample`` uses; the noise is quantised to 8 bits over [-4, 4]
(a step of 0.03 standard deviations), which is invisible on screen.

Only numbers and base64 strings made here are placed in the page (no user text), so the
HTML cannot be injected into.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import torch
from PIL import Image

from diffusion_core.maths.schedules import Schedule
from diffusion_core.units import to_255

NOISE_RANGE = 4.0


def _png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode_image(x0: torch.Tensor) -> str:
    """(C,H,W) in [-1,1] -> base64 PNG (RGB)."""
    a = to_255(x0).byte()
    if a.shape[0] == 1:
        a = a.expand(3, -1, -1)
    return _png_b64(a.permute(1, 2, 0).contiguous().numpy())


def encode_noise(eps: torch.Tensor) -> str:
    """(C,H,W) standard normal -> base64 PNG, 8-bit over [-4, 4]."""
    q = to_255(eps / NOISE_RANGE).byte()  # [-4, 4] -> 0..255
    if q.shape[0] == 1:
        q = q.expand(3, -1, -1)
    return _png_b64(q.permute(1, 2, 0).contiguous().numpy())


def scrubber_html(x0: torch.Tensor, eps: torch.Tensor, schedule: Schedule, t0: int = 0,
                  presenter: bool = False, gray: bool = False) -> str:
    """The full HTML document for ``streamlit.components.v1.html``."""
    ab = schedule.alpha_bar
    data = {
        "img": encode_image(x0),
        "noise": encode_noise(eps),
        "ab": [float(f"{v:.10g}") for v in ab],
        "T": schedule.T,
        "t0": int(min(max(t0, 0), schedule.T)),
        "noiseRange": NOISE_RANGE,
        "presenter": bool(presenter),
        "gray": bool(gray),
        "name": schedule.name,
    }
    return _TEMPLATE.replace("__DATA__", json.dumps(data))


_TEMPLATE = r"""<!doctype html>
<html><head><meta charset="utf-8">
<style>
 body{font-family:"Source Sans Pro",system-ui,sans-serif;margin:0;color:#262730;background:#fff}
 .row{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start}
 .panel{display:flex;flex-direction:column;align-items:center}
 .cap{font-size:13px;color:#555;margin-top:4px;text-align:center}
 canvas.img{image-rendering:pixelated;border-radius:6px;background:#eee}
 #controls{display:flex;gap:10px;align-items:center;margin:8px 0}
 #t{flex:1}
 button{font-size:15px;padding:4px 14px;border-radius:6px;border:1px solid #ccc;background:#f6f6f9;
   cursor:pointer}
 #mix{font-size:17px;margin:6px 0}
 #mix b{color:#d33682}
 svg text{font-size:11px;fill:#555}
 .big #mix{font-size:26px}
</style></head>
<body>
<div id="root">
 <div id="controls">
  <button id="play" aria-label="Play">&#9654; Play</button>
  <input id="t" type="range" min="0" step="1" aria-label="timestep t">
  <span id="tlabel" style="min-width:110px"></span>
 </div>
 <div id="mix"></div>
 <div class="row">
  <div class="panel"><canvas id="xt" class="img"></canvas>
    <div class="cap">x<sub>t</sub>: what the model sees at step t</div></div>
  <div class="panel" id="noisepanel"><canvas id="nz" class="img"></canvas>
    <div class="cap">the noise part, &radic;(1&minus;&alpha;&#772;<sub>t</sub>)&middot;&epsilon;</div></div>
  <div class="panel" id="charts">
   <svg id="curve" width="300" height="150"></svg>
   <div class="cap">signal left (&alpha;&#772;<sub>t</sub>, blue) and log SNR (orange) against t</div>
   <svg id="hist" width="300" height="150"></svg>
   <div class="cap">pixel values of x<sub>t</sub> (bars) against the bell curve N(0,1)</div>
  </div>
 </div>
</div>
<script>
const D = __DATA__;
const T = D.T, ab = D.ab;
const slider = document.getElementById('t');
slider.max = T; slider.value = D.t0;
const big = D.presenter;
if (big) { document.getElementById('root').classList.add('big');
  document.getElementById('noisepanel').style.display='none';
  document.getElementById('charts').style.display='none'; }
function loadImg(b64){return new Promise(r=>{const im=new Image();im.onload=()=>r(im);
  im.src='data:image/png;base64,'+b64;});}
let X0, EPS, W, H, N, xt, nz, ctxX, ctxN, imgX, imgN;
function pixels(im){const c=document.createElement('canvas');c.width=im.width;c.height=im.height;
  const g=c.getContext('2d');g.drawImage(im,0,0);return g.getImageData(0,0,im.width,im.height).data;}
// t = 0 on the slider is the clean image; slider value k >= 1 is timestep k-1 of the schedule
function coefs(k){ if(k<=0) return [1,0]; const a=ab[Math.min(k-1,T-1)];
  return [Math.sqrt(a), Math.sqrt(1-a)]; }
const NB=60, LO=-3.5, HI=3.5;
function render(k){
  const [a,b]=coefs(k);
  const ox=imgX.data, on=imgN.data;
  const hist=new Uint32Array(NB);
  for(let i=0;i<N;i++){
    const j=i*4;
    for(let c=0;c<3;c++){
      const v=a*X0[c][i]+b*EPS[c][i];
      ox[j+c]=Math.max(0,Math.min(255,(v+1)*127.5));
      on[j+c]=Math.max(0,Math.min(255,(b*EPS[c][i]+1)*127.5));
      if(!D.gray||c==0){const bin=Math.floor((v-LO)/(HI-LO)*NB); if(bin>=0&&bin<NB) hist[bin]++;}
    }
  }
  ctxX.putImageData(imgX,0,0); if(!big) ctxN.putImageData(imgN,0,0);
  const tl = k<=0 ? 'step 0: clean image' : ('step '+k+' of '+T);
  document.getElementById('tlabel').textContent = tl;
  document.getElementById('mix').innerHTML = 'x<sub>t</sub> = <b>'+a.toFixed(2)+
    '</b> &times; image + <b>'+b.toFixed(2)+'</b> &times; noise'+
    (k>0?'&nbsp;&nbsp;<span style="font-size:13px;color:#777">(&alpha;&#772;<sub>t</sub> = '+
    (a*a).toPrecision(3)+', SNR = '+(a*a/Math.max(b*b,1e-30)).toPrecision(3)+')</span>':'');
  if(!big){ drawMarker(k); drawHist(hist); }
  document.body.dataset.k = k;
}
function xs(k,w){return 30+(w-40)*k/T;}
function drawCurves(){
  const s=document.getElementById('curve'); const w=300,h=150;
  let p1='',p2=''; const ls=ab.map(a=>Math.log(a/(1-a)));
  const lmin=Math.max(Math.min(...ls),-25), lmax=Math.min(Math.max(...ls),25);
  for(let t=0;t<T;t+=Math.max(1,Math.floor(T/300))){
    const x=xs(t+1,w); p1+=x+','+(10+(h-30)*(1-ab[t]))+' ';
    const l=Math.max(lmin,Math.min(lmax,ls[t]));
    p2+=x+','+(10+(h-30)*(lmax-l)/(lmax-lmin))+' ';}
  s.innerHTML='<rect x="30" y="10" width="'+(w-40)+'" height="'+(h-30)+'" fill="#fafafa" stroke="#ddd"/>'+
   '<polyline points="'+p1+'" fill="none" stroke="#1f77b4" stroke-width="2"/>'+
   '<polyline points="'+p2+'" fill="none" stroke="#ff7f0e" stroke-width="2"/>'+
   '<text x="2" y="16">1</text><text x="2" y="'+(h-20)+'">0</text>'+
   '<text x="30" y="'+(h-4)+'">t = 0</text><text x="'+(w-45)+'" y="'+(h-4)+'">T</text>'+
   '<line id="mk" x1="0" x2="0" y1="10" y2="'+(h-20)+'" stroke="#d33682" stroke-width="2"/>';
}
function drawMarker(k){const m=document.getElementById('mk'); const x=xs(Math.max(k,0),300);
  m.setAttribute('x1',x); m.setAttribute('x2',x);}
function drawHist(hist){
  const s=document.getElementById('hist'); const w=300,h=150; let tot=0; for(const c of hist) tot+=c;
  const bw=(HI-LO)/NB; let out='<rect x="0" y="0" width="'+w+'" height="'+(h-20)+'" fill="#fafafa"/>';
  const dens=[...hist].map(c=>c/Math.max(tot,1)/bw); const ymax=Math.max(0.6,...dens);
  for(let i=0;i<NB;i++){const x=i*w/NB, hh=(h-20)*dens[i]/ymax;
    out+='<rect x="'+x+'" y="'+(h-20-hh)+'" width="'+(w/NB-0.5)+'" height="'+hh+'" fill="#9ecae1"/>';}
  let p=''; for(let i=0;i<=100;i++){const v=LO+(HI-LO)*i/100; const d=Math.exp(-v*v/2)/Math.sqrt(2*Math.PI);
    p+=(w*i/100)+','+(h-20-(h-20)*d/ymax)+' ';}
  out+='<polyline points="'+p+'" fill="none" stroke="#d62728" stroke-width="2"/>'+
   '<text x="2" y="'+(h-6)+'">'+LO+'</text><text x="'+(w/2-4)+'" y="'+(h-6)+'">0</text>'+
   '<text x="'+(w-22)+'" y="'+(h-6)+'">'+HI+'</text>';
  s.innerHTML=out;
}
let playing=false, raf=null;
document.getElementById('play').onclick=()=>{
  if(playing){playing=false;cancelAnimationFrame(raf);
    document.getElementById('play').innerHTML='&#9654; Play';return;}
  playing=true; document.getElementById('play').innerHTML='&#10074;&#10074; Pause';
  let k=+slider.value; if(k>=T) k=0; const start=performance.now(), k0=k, dur=5000*(T-k0)/T;
  const step=(now)=>{ if(!playing) return; const f=Math.min(1,(now-start)/Math.max(dur,1));
    const kk=Math.round(k0+(T-k0)*f); slider.value=kk; render(kk);
    if(f<1) raf=requestAnimationFrame(step); else {playing=false;
      document.getElementById('play').innerHTML='&#9654; Play';}};
  raf=requestAnimationFrame(step);
};
slider.addEventListener('input',()=>render(+slider.value));
Promise.all([loadImg(D.img),loadImg(D.noise)]).then(([a,b])=>{
  W=a.width;H=a.height;N=W*H;
  const pa=pixels(a), pb=pixels(b);
  X0=[0,1,2].map(c=>{const o=new Float32Array(N);for(let i=0;i<N;i++)o[i]=pa[i*4+c]/127.5-1;return o;});
  const s=2*D.noiseRange/255;
  EPS=[0,1,2].map(c=>{const o=new Float32Array(N);for(let i=0;i<N;i++)o[i]=pb[i*4+c]*s-D.noiseRange;return o;});
  xt=document.getElementById('xt'); nz=document.getElementById('nz');
  for(const c of [xt,nz]){c.width=W;c.height=H;}
  const disp = big ? Math.min(720, window.innerWidth-20) : Math.min(340, window.innerWidth/2-20);
  const sc = disp/Math.max(W,H);
  xt.style.width=(W*sc)+'px'; xt.style.height=(H*sc)+'px';
  nz.style.width=(W*sc*0.6)+'px'; nz.style.height=(H*sc*0.6)+'px';
  ctxX=xt.getContext('2d'); ctxN=nz.getContext('2d');
  imgX=ctxX.createImageData(W,H); imgN=ctxN.createImageData(W,H);
  for(let i=0;i<N;i++){imgX.data[i*4+3]=255; imgN.data[i*4+3]=255;}
  if(!big) drawCurves();
  render(+slider.value);
  document.body.dataset.ready='1';
});
</script></body></html>
"""
